#pragma once
// The runtime flags that generate, chat and bench share (--ctx-size, --kv-type, --lm-head,
// --ternary-layout, --kernel) and the sampler flags of generate and chat.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "onebit/infer/runtime.h"
#include "onebit/infer/sampler.h"

namespace onebit::cli {

struct RuntimeCliOptions {
  int ctx_size = 0;
  std::string kv_type = "f16", lm_head = "model", ternary_layout = "2bit", kernel;
  // The options as the runtime takes them; errors name the flag.
  infer::RuntimeOptions resolve() const;
};

void add_runtime_options(CLI::App* sub, RuntimeCliOptions& o);
void add_sampling_options(CLI::App* sub, infer::SamplingOptions& s);

}  // namespace onebit::cli
