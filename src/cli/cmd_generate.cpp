// onebit generate: a plain reference sampler over a model dir (recomputes the whole context per
// token; the KV-cached fast runtime is a later issue). Inference uses the hard-quantized model.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/infer/load_model.h"
#include "onebit/infer/sampler.h"
#include "onebit/kernels/backend.h"
#include "onebit/kernels/threads.h"

namespace onebit::cli {

namespace {
struct GenerateArgs {
  std::string model, prompt, tokenizer;
  int max_tokens = 200, threads = 0;
  std::string device;  // empty: kernels::choose_device's default
  uint64_t seed = 0;
  infer::SamplingOptions sampling;
};

// Bytes of a trailing UTF-8 sequence that is not complete yet (held back from the stream).
size_t incomplete_utf8_tail(const std::string& s) {
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

void run_generate(const GenerateArgs& a) {
  if (a.max_tokens < 0) fail("--max-tokens must be >= 0 (got ", a.max_tokens, ")");
  if (a.threads < 0) fail("--threads must be >= 0 (got ", a.threads, "; 0 = all cores)");
  infer::check_sampling_options(a.sampling);  // --temperature, --top-k, --top-p (NaN included)
  kernels::set_num_threads(a.threads);
  infer::LoadedModel lm = infer::load_model_dir(a.model, a.tokenizer, kernels::choose_device(a.device));
  auto& model = *lm.model;
  const auto& tok = *lm.tokenizer;
  model.set_training(false);
  model.set_quant_state({model::QuantPhase::Hard, 0.0f});
  std::vector<int32_t> ids = tok.encode(a.prompt, /*add_special=*/true);
  if (ids.empty()) {
    auto start = tok.bos_id() ? tok.bos_id() : tok.eos_id();
    if (!start) fail("--prompt is empty and the tokenizer has no BOS/EOS token to start from");
    ids.push_back(*start);
  }
  const size_t prompt_len = ids.size();
  const int V = model.config().vocab_size;
  const size_t ctx = static_cast<size_t>(model.config().max_position_embeddings);
  std::vector<float> logits(static_cast<size_t>(V));
  Rng rng(a.seed);
  std::fputs(a.prompt.c_str(), stdout);
  std::fflush(stdout);
  std::string printed;
  for (int i = 0; i < a.max_tokens; ++i) {
    const size_t start = ids.size() > ctx ? ids.size() - ctx : 0;
    const int T = static_cast<int>(ids.size() - start);
    model.logits(ids.data() + start, 1, T, logits.data(), /*last_only=*/true);
    // Ids the tokenizer cannot produce (vocab padding) are never sampled.
    std::span<const float> usable(logits.data(), static_cast<size_t>(std::min(V, tok.vocab_size())));
    const int32_t next = infer::sample_token(usable, a.sampling, rng);
    if (tok.eos_id() && next == *tok.eos_id()) break;
    ids.push_back(next);
    std::string text = tok.decode(std::span<const int32_t>(ids.data() + prompt_len, ids.size() - prompt_len), true);
    const size_t ready = text.size() - incomplete_utf8_tail(text);
    if (ready > printed.size() && text.compare(0, printed.size(), printed) == 0) {
      std::fwrite(text.data() + printed.size(), 1, ready - printed.size(), stdout);
      std::fflush(stdout);
      printed.assign(text, 0, ready);
    }
  }
  std::string text = tok.decode(std::span<const int32_t>(ids.data() + prompt_len, ids.size() - prompt_len), true);
  if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0)
    std::fwrite(text.data() + printed.size(), 1, text.size() - printed.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}
}  // namespace

void add_generate_command(CLI::App& app) {
  auto* sub = app.add_subcommand("generate", "Sample text from a model dir (reference sampler, quantized weights)");
  auto a = std::make_shared<GenerateArgs>();
  sub->add_option("--model,--model-dir,-m", a->model,
                  "Model dir (config.json, model.safetensors, tokenizer.json), e.g. a train --output-dir")
      ->required();
  sub->add_option("--prompt,-p", a->prompt, "Text to continue");
  sub->add_option("--max-tokens,--max-new-tokens,-n", a->max_tokens, "Tokens to generate at most (stops at EOS)")
      ->capture_default_str();
  sub->add_option("--temperature,-t", a->sampling.temperature, "Softmax temperature (0 = greedy)")->capture_default_str();
  sub->add_option("--top-k", a->sampling.top_k, "Sample among the k most likely tokens (0 = all)")->capture_default_str();
  sub->add_option("--top-p", a->sampling.top_p, "Nucleus sampling: smallest set with this probability mass (1 = off)")
      ->capture_default_str();
  // An unsigned option would take "-1" as 2^64 - 1; a negative seed is a typo, not a seed.
  sub->add_option("--seed", a->seed, "Sampling seed (same seed, same text)")
      ->check(CLI::Validator(
          [](std::string& v) { return v.find('-') == std::string::npos ? std::string() : cat("must be >= 0 (got ", v, ")"); },
          ""))
      ->capture_default_str();
  sub->add_option("--tokenizer", a->tokenizer, "Override the model dir's tokenizer.json");
  sub->add_option("--threads", a->threads, "CPU threads (0 = all cores)")->capture_default_str();
  sub->add_option("--device", a->device, kernels::kDeviceHelp)->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  sub->callback([a]() { run_generate(*a); });
}

}  // namespace onebit::cli
