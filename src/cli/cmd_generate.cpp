// onebit generate: sample text from a model dir or a GGUF file on the packed runtime (infer/runtime.h): the prompt
// is prefilled in chunks, then tokens are decoded one at a time through the KV cache and streamed
// as they come; prefill and decode speed go to stderr at the end.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/runtime_cli_options.h"
#include "cli/runtime_model.h"
#include "onebit/core/error.h"
#include "onebit/core/interrupt.h"
#include "onebit/core/rng.h"
#include "onebit/data/tokenizer.h"
#include "onebit/infer/generator.h"
#include "onebit/infer/model_weights.h"
#include "onebit/kernels/threads.h"

namespace onebit::cli {

namespace {
struct GenerateArgs {
  std::string model, prompt, tokenizer;
  int max_tokens = 200, threads = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  infer::SamplingOptions sampling;
  RuntimeCliOptions runtime;
};

void run_generate(const GenerateArgs& a) {
  if (a.max_tokens < 0) fail("--max-tokens must be >= 0 (got ", a.max_tokens, ")");
  if (a.threads < 0) fail("--threads must be >= 0 (got ", a.threads, "; 0 = all cores)");
  infer::check_sampling_options(a.sampling);  // NaN included
  const infer::RuntimeOptions ropt = a.runtime.resolve();
  const int threads = kernels::set_num_threads(a.threads);
  RuntimeModel model = load_runtime_model(a.model, a.tokenizer, /*want_tokenizer=*/true);
  const std::unique_ptr<data::Tokenizer> tok = std::move(model.tokenizer);
  infer::Runtime rt(std::move(model.weights), ropt);
  std::vector<int32_t> ids = tok->encode(a.prompt, /*add_special=*/true);
  if (ids.empty()) {
    auto start = tok->bos_id() ? tok->bos_id() : tok->eos_id();
    if (!start) fail("--prompt is empty and the tokenizer has no BOS/EOS token to start from");
    ids.push_back(*start);
  }
  infer::GenerateOptions g;
  g.max_tokens = a.max_tokens;
  g.sampling = a.sampling;
  g.stop = a.stop;
  Rng rng(a.seed);
  install_interrupt_handler();
  std::fputs(a.prompt.c_str(), stdout);
  std::fflush(stdout);
  infer::Generator gen(rt, *tok);
  const infer::GenerateResult r = gen.generate(ids, g, rng, [](std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    return !interrupt_requested();
  });
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const size_t decoded = r.tokens.size() - (r.last_unfed ? 1 : 0);
  std::fprintf(stderr, "onebit: prefill %d tokens in %.3f s (%.1f tok/s), decode %zu tokens in %.3f s (%.1f tok/s), "
               "%s, kernels %s, %d threads\n",
               r.prompt_tokens, r.prefill_seconds, r.prefill_seconds > 0 ? r.prompt_tokens / r.prefill_seconds : 0.0,
               decoded, r.decode_seconds, r.decode_seconds > 0 ? decoded / r.decode_seconds : 0.0,
               infer::to_string(r.reason), infer::to_string(rt.kernel_path()), threads);
  if (r.reason == infer::StopReason::ContextFull)
    std::fprintf(stderr, "onebit: the context of %d tokens is full (--ctx-size; the model allows %d)\n", rt.context(),
                 rt.config().max_position_embeddings);
}
}  // namespace

void add_generate_command(CLI::App& app) {
  auto* sub = app.add_subcommand("generate",
                                 "Sample text from a model dir or .gguf file (packed ternary runtime, KV cache)");
  auto a = std::make_shared<GenerateArgs>();
  sub->add_option("--model,--model-dir,-m", a->model,
                  "Model dir (config.json, model.safetensors, tokenizer.json), e.g. a train --output-dir, or a "
                  "llama.cpp .gguf file (bitnet or llama architecture)")
      ->required();
  sub->add_option("--prompt,-p", a->prompt, "Text to continue");
  sub->add_option("--max-tokens,--max-new-tokens,-n", a->max_tokens, "Tokens to generate at most (stops at EOS)")
      ->capture_default_str();
  add_sampling_options(sub, a->sampling);
  add_seed_option(sub, a->seed, "Sampling seed (same seed, same text)");
  sub->add_option("--stop", a->stop, "Stop before this text (repeat the flag for several)");
  add_model_run_options(sub, a->tokenizer, a->threads, a->runtime);
  sub->callback([a]() { run_generate(*a); });
}

}  // namespace onebit::cli
