#pragma once
// The runtime flags that generate, chat and bench share (--ctx-size, --kv-type, --lm-head,
// --ternary-layout, --kernel), and the sampler, --seed, --tokenizer and --threads flags of generate
// and chat.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "onebit/infer/runtime.h"
#include "onebit/infer/sampler.h"

namespace onebit::cli {

struct RuntimeCliOptions {
  int ctx_size = 0;
  int ubatch = infer::RuntimeOptions{}.prefill_chunk;
  std::string kv_type = "f16", lm_head = "model", ternary_layout = "2bit", kernel;
  // The options as the runtime takes them; errors name the flag.
  infer::RuntimeOptions resolve() const;
};

void add_runtime_options(CLI::App* sub, RuntimeCliOptions& o);
void add_sampling_options(CLI::App* sub, infer::SamplingOptions& s);
// --seed with the given help text; a negative value is refused (an unsigned option would take "-1" as
// 2^64 - 1: a typo, not a seed).
void add_seed_option(CLI::App* sub, uint64_t& seed, const std::string& help);
// The flags generate and chat end with: --tokenizer, --threads, then add_runtime_options'.
void add_model_run_options(CLI::App* sub, std::string& tokenizer, int& threads, RuntimeCliOptions& runtime);

}  // namespace onebit::cli
