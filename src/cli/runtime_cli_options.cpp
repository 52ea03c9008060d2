#include "cli/runtime_cli_options.h"

#include "onebit/core/error.h"

namespace onebit::cli {

infer::RuntimeOptions RuntimeCliOptions::resolve() const {
  infer::RuntimeOptions o;
  if (ctx_size < 0) fail("--ctx-size must be >= 0 (got ", ctx_size, "; 0 = the model's max_position_embeddings)");
  o.context = ctx_size;
  if (ubatch < 0 || ubatch > 8192) fail("--ubatch-size must be 0..8192 (got ", ubatch, "; 0 = auto)");
  o.prefill_chunk = ubatch;
  if (kv_type == "f16")
    o.kv = infer::KvType::F16;
  else if (kv_type == "f32")
    o.kv = infer::KvType::F32;
  else if (kv_type == "int8")
    o.kv = infer::KvType::Int8;
  else
    fail("--kv-type must be f16, f32 or int8 (got \"", printable(kv_type), "\")");
  if (lm_head == "model")
    o.head = infer::HeadType::Model;
  else if (lm_head == "bf16")
    o.head = infer::HeadType::BF16;
  else if (lm_head == "int8")
    o.head = infer::HeadType::Int8;
  else if (lm_head == "q6")
    o.head = infer::HeadType::Q6;
  else
    fail("--lm-head must be model, bf16, int8 or q6 (got \"", printable(lm_head), "\")");
  if (ternary_layout == "2bit")
    o.ternary = infer::PackedFormat::Ternary2;
  else if (ternary_layout == "1.6bit")
    o.ternary = infer::PackedFormat::Ternary1_6;
  else
    fail("--ternary-layout must be 2bit or 1.6bit (got \"", printable(ternary_layout), "\")");
  if (!kernel.empty()) o.kernel = infer::path_from_string(kernel, "--kernel");
  return o;
}

void add_runtime_options(CLI::App* sub, RuntimeCliOptions& o) {
  sub->add_option("--ctx-size,-c", o.ctx_size,
                  "Context (KV cache) length in tokens (0 = the model's max_position_embeddings)")
      ->capture_default_str();
  sub->add_option("--ubatch-size", o.ubatch,
                  "Prompt tokens per forward pass of the prefill (llama.cpp's -ub): larger chunks share each weight "
                  "decode among more tokens, at the cost of scratch memory; 0 = auto (64 on 1-2 threads, 32 per "
                  "thread up to 512 on more)")
      ->capture_default_str();
  sub->add_option("--kv-type", o.kv_type,
                  "KV cache storage: f16, f32 or int8 (one scale per position and head; a quarter of f32)")
      ->capture_default_str();
  sub->add_option("--lm-head", o.lm_head,
                  "LM head storage: model (as config.json says), bf16, int8 or q6 (6-bit codes; both with per-row "
                  "scales and int8 input: faster decode for large vocabularies, not the trained numerics)")
      ->capture_default_str();
  sub->add_option("--ternary-layout", o.ternary_layout,
                  "Packing of ternary layers: 2bit (4 codes a byte) or 1.6bit (5 codes a byte, base 3)")
      ->capture_default_str();
  sub->add_option("--kernel", o.kernel,
                  "Kernel path: scalar, avx2, avx512vnni, amx or neon (default: ONEBIT_INFER_KERNEL, else the best this CPU has)");
}

void add_seed_option(CLI::App* sub, uint64_t& seed, const std::string& help) {
  sub->add_option("--seed", seed, help)
      ->check(CLI::Validator(
          [](std::string& v) {
            return v.find('-') == std::string::npos ? std::string() : cat("must be >= 0 (got ", v, ")");
          },
          ""))
      ->capture_default_str();
}

void add_model_run_options(CLI::App* sub, std::string& tokenizer, int& threads, RuntimeCliOptions& runtime) {
  sub->add_option("--tokenizer", tokenizer, "Override the model dir's tokenizer.json");
  sub->add_option("--threads", threads, "CPU threads (0 = all cores)")->capture_default_str();
  add_runtime_options(sub, runtime);
}

void add_sampling_options(CLI::App* sub, infer::SamplingOptions& s) {
  sub->add_option("--temperature,-t", s.temperature, "Softmax temperature (0 = greedy)")->capture_default_str();
  sub->add_option("--top-k", s.top_k, "Sample among the k most likely tokens (0 = all)")->capture_default_str();
  sub->add_option("--top-p", s.top_p, "Nucleus sampling: smallest set with this probability mass (1 = off)")
      ->capture_default_str();
  sub->add_option("--min-p", s.min_p, "Drop tokens less likely than min-p times the most likely one (0 = off)")
      ->capture_default_str();
  sub->add_option("--repeat-penalty", s.repeat_penalty,
                  "Divide (positive) or multiply (negative) the logits of recently seen tokens by this (1 = off)")
      ->capture_default_str();
  sub->add_option("--repeat-last-n", s.repeat_last_n, "How many recent tokens the repeat penalty looks at")
      ->capture_default_str();
}

}  // namespace onebit::cli
