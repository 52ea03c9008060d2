// onebit eval: held-out loss, perplexity and bits per byte of a model dir or checkpoint on a token
// file or text, computed by the trainer's own evaluate() so that the numbers are comparable.
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/core/log.h"
#include "onebit/data/dataset.h"
#include "onebit/data/token_file.h"
#include "onebit/data/window_sources.h"
#include "onebit/infer/load_model.h"
#include "onebit/kernels/backend.h"
#include "onebit/kernels/threads.h"
#include "onebit/train/checkpoint_quant.h"
#include "onebit/train/evaluate.h"
#include "onebit/train/schedule.h"

namespace onebit::cli {

namespace {
struct EvalArgs {
  std::string model, data, text, tokenizer, split = "all", phase;
  double val_fraction = 0.1;
  double quant_k = 0;
  bool quant_k_given = false;
  int batch_size = 8, seq_len = 0, threads = 0;
  std::string device;  // empty: kernels::choose_device's default
  int64_t max_batches = 0;
  bool json_out = false;
  bool llama_perplexity_positions = false;
};

// Everything that can be checked without the model, so that a mistyped flag fails at once.
void check_flags(const EvalArgs& a) {
  if (a.data.empty() == a.text.empty()) fail("eval: pass exactly one of --data FILE or --text STRING");
  if (a.batch_size <= 0) fail("--batch-size must be positive (got ", a.batch_size, ")");
  if (a.seq_len < 0) fail("--seq-len must be positive, or 0 for the default (got ", a.seq_len, ")");
  if (a.max_batches < 0) fail("--max-batches must be >= 0 (got ", a.max_batches, "; 0 = the whole input)");
  if (a.llama_perplexity_positions && a.seq_len > 0 && a.seq_len < 4)
    fail("--llama-perplexity-positions needs --seq-len of at least 4 (got ", a.seq_len, ")");
  if (a.threads < 0) fail("--threads must be >= 0 (got ", a.threads, "; 0 = all cores)");
  if (a.split != "all" && a.split != "val") fail("--split must be all or val (got \"", printable(a.split), "\")");
  if (!(a.val_fraction >= 0 && a.val_fraction < 1)) fail("--val-fraction must be in [0, 1) (got ", a.val_fraction, ")");
  if (a.split == "val" && !a.text.empty()) fail("--split val needs --data (the file the model was trained on)");
  if (!a.phase.empty()) train::quant_phase_from_string(a.phase, "--phase");
  if (a.quant_k_given) {
    if (!(std::isfinite(a.quant_k) && a.quant_k > 0)) fail("--quant-k must be a positive number (got ", a.quant_k, ")");
    if (a.phase != "soft") fail("--quant-k applies only to --phase soft");
  }
  if (!a.data.empty() && !fs::exists(a.data)) fail("--data ", a.data, ": no such file or directory");
}

// The phase and k the model runs in: --phase/--quant-k, else the checkpoint's (trainer_state.json),
// else hard (a final model dir, evaluated as deployed).
// trainer_state.json is read only when its phase is needed, so --phase works on any model dir.
model::QuantState eval_quant_state(const EvalArgs& a) {
  if (a.phase.empty()) {
    const std::optional<model::QuantState> saved = train::checkpoint_quant_state(a.model);
    return saved ? *saved : model::QuantState{model::QuantPhase::Hard, 0.0f};
  }
  const model::QuantPhase phase = train::quant_phase_from_string(a.phase, "--phase");
  if (phase != model::QuantPhase::Soft) return {phase, 0.0f};
  if (a.quant_k_given) return {phase, static_cast<float>(a.quant_k)};
  const std::optional<model::QuantState> saved = train::checkpoint_quant_state(a.model);
  if (saved && saved->phase == model::QuantPhase::Soft) return *saved;
  fail("--phase soft needs --quant-k K: ", a.model, " is not a checkpoint in the soft phase, so it has no k to use");
}

// The whole of a .tokens file as one held-out sequence.
std::shared_ptr<const data::TokenSequence> whole_token_file(const fs::path& path, const data::Tokenizer& tok,
                                                            int vocab_size) {
  auto tf = std::make_shared<const data::TokenFile>(path);
  data::check_token_file_matches(*tf, tok);
  if (tf->header().vocab_size > static_cast<uint32_t>(vocab_size))
    fail(path.string(), ": vocab size ", tf->header().vocab_size, " exceeds the model's ", vocab_size);
  return std::make_shared<data::TokenFileSlice>(tf, 0, tf->size());
}

void run_eval(const EvalArgs& a) {
  check_flags(a);
  kernels::set_num_threads(a.threads);
  const model::QuantState quant = eval_quant_state(a);
  infer::LoadedModel lm = infer::load_model_dir(a.model, a.tokenizer, kernels::choose_device(a.device));
  const auto& cfg = lm.model->config();
  const auto& tok = *lm.tokenizer;
  const int T = a.seq_len > 0 ? a.seq_len : std::min(256, cfg.max_position_embeddings);
  if (T > cfg.max_position_embeddings)
    fail("--seq-len ", T, " exceeds the model's max_position_embeddings ", cfg.max_position_embeddings);
  std::unique_ptr<data::ValSource> val;
  if (a.split == "val") {
    // Exactly the held-out split `onebit train --val-fraction` used on this data.
    data::DataOptions o;
    o.path = a.data;
    o.val_fraction = a.val_fraction;
    o.threads = a.threads;
    data::Dataset ds = data::open_dataset(o, tok);
    if (!ds.val) fail("--split val: --val-fraction ", a.val_fraction, " leaves no held-out data");
    val = std::move(ds.val);
  } else {
    std::shared_ptr<const data::TokenSequence> seq;
    std::string desc;
    if (!a.text.empty()) {
      // One document, as a text file holding the string would be: its tokens, then end-of-text.
      std::vector<int32_t> ids = tok.encode(a.text);
      if (auto eos = tok.eos_id()) ids.push_back(*eos);
      seq = std::make_shared<data::TokenVector>(std::move(ids));
      desc = "--text";
    } else {
      // Text goes through the same tokenize-and-cache step as `onebit train --data`, so the tokens
      // (end-of-text after each document included) are exactly the ones training saw.
      const fs::path tokens = fs::path(a.data).extension() == ".tokens"
                                  ? fs::path(a.data)
                                  : data::cached_tokens_for_text(a.data, tok, fs::path(), a.threads);
      seq = whole_token_file(tokens, tok, cfg.vocab_size);
      desc = a.data;
    }
    if (seq->size() < 2) fail(desc, ": needs at least 2 tokens to evaluate (has ", seq->size(), ")");
    val = std::make_unique<data::ValSource>(seq, tok, desc);
  }
  lm.model->set_quant_state(quant);
  log_info("eval: ", val->describe(), ", phase ", train::to_string(quant.phase),
           quant.phase == model::QuantPhase::Soft ? cat(" k=", quant.k) : std::string());
  train::ScoredPositions positions;
  if (a.llama_perplexity_positions) {
    if (T < 4) fail("--llama-perplexity-positions needs --seq-len of at least 4 (got ", T, ")");
    positions = {T / 2, T - 1};
  }
  train::EvalResult r = train::evaluate(*lm.model, *val, a.batch_size, T, a.max_batches, false, positions);
  if (a.json_out) {
    std::printf("%s\n", json{{"loss", r.loss},
                             {"perplexity", r.perplexity},
                             {"bits_per_byte", r.bits_per_byte},
                             {"nats_per_byte", r.nats_per_byte},
                             {"tokens", r.tokens},
                             {"bytes", r.bytes},
                             {"phase", train::to_string(quant.phase)},
                             {"k", quant.k}}
                            .dump()
                            .c_str());
  } else {
    std::printf("loss %.4f nats/token (%.4f nats/byte, %.4f bits/byte) perplexity %.3f  (%llu tokens, %llu bytes, seq %d, phase %s)\n",
                r.loss, r.nats_per_byte, r.bits_per_byte, r.perplexity, static_cast<unsigned long long>(r.tokens),
                static_cast<unsigned long long>(r.bytes), T, train::to_string(quant.phase));
  }
}
}  // namespace

void add_eval_command(CLI::App& app) {
  auto* sub = app.add_subcommand("eval", "Evaluate a model dir or checkpoint: loss, perplexity, bits per byte");
  auto a = std::make_shared<EvalArgs>();
  sub->add_option("--model,--model-dir,-m", a->model,
                  "Model dir or checkpoint dir (config.json, model.safetensors, tokenizer.json)")
      ->required();
  sub->add_option("--data", a->data,
                  "Text file or dir (tokenized and cached as `onebit train --data` does it, end-of-text after each "
                  "document), JSONL, or .tokens file");
  sub->add_option("--text", a->text, "Evaluate this string (one document, end-of-text appended) instead of a file");
  sub->add_option("--split", a->split,
                  "all: the whole --data; val: exactly the held-out split `onebit train` used on this file "
                  "(its last --val-fraction)")
      ->capture_default_str();
  sub->add_option("--val-fraction", a->val_fraction, "With --split val: the --val-fraction the model was trained with")
      ->capture_default_str();
  sub->add_option("--phase", a->phase,
                  "Quantization phase to run the model in: fp, soft or hard. Default: a checkpoint's own phase "
                  "and k (its trainer_state.json), so the eval equals the one the trainer logged at that step; "
                  "hard (as deployed) for a model dir without trainer_state.json, such as train's final output");
  sub->add_option("--quant-k", a->quant_k,
                  "With --phase soft: the tanh sharpness k (default: the checkpoint's k, if it is in the soft phase)");
  sub->add_option("--tokenizer", a->tokenizer, "Override the model dir's tokenizer.json");
  sub->add_option("--batch-size,-b", a->batch_size, "Windows per forward pass")->capture_default_str();
  sub->add_option("--seq-len", a->seq_len, "Tokens per window (default: min(256, max_position_embeddings))");
  sub->add_flag("--llama-perplexity-positions", a->llama_perplexity_positions,
               "Score only the targets `llama-perplexity -c SEQ_LEN` scores: positions SEQ_LEN/2 .. SEQ_LEN-2 of each "
               "window (its second half), so that the two perplexities are over the same tokens");
  sub->add_option("--max-batches", a->max_batches, "Evaluate at most this many batches (0 = the whole input)")
      ->capture_default_str();
  sub->add_option("--threads", a->threads, "CPU threads (0 = all cores)")->capture_default_str();
  sub->add_option("--device", a->device, kernels::kDeviceHelp)->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  sub->add_flag("--json", a->json_out, "Print one JSON object instead of a line of text");
  sub->callback([a, sub]() {
    a->quant_k_given = sub->count("--quant-k") > 0;
    run_eval(*a);
  });
}

}  // namespace onebit::cli
