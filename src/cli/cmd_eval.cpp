// onebit eval: held-out loss, perplexity and bits per byte of a model dir on a token file or text.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/data/dataset.h"
#include "onebit/data/token_file.h"
#include "onebit/data/window_sources.h"
#include "onebit/infer/load_model.h"
#include "onebit/kernels/threads.h"
#include "onebit/train/evaluate.h"

namespace onebit::cli {

namespace {
struct EvalArgs {
  std::string model, data, text, tokenizer, split = "all";
  double val_fraction = 0.1;
  int batch_size = 8, seq_len = 0, threads = 0;
  int64_t max_batches = 0;
  bool json_out = false;
};

void run_eval(const EvalArgs& a) {
  kernels::set_num_threads(a.threads);
  if (a.data.empty() == a.text.empty()) fail("eval: pass exactly one of --data FILE or --text STRING");
  if (a.batch_size <= 0) fail("--batch-size must be positive (got ", a.batch_size, ")");
  infer::LoadedModel lm = infer::load_model_dir(a.model, a.tokenizer);
  const auto& cfg = lm.model->config();
  const int T = a.seq_len > 0 ? a.seq_len : std::min(256, cfg.max_position_embeddings);
  if (T > cfg.max_position_embeddings)
    fail("--seq-len ", T, " exceeds the model's max_position_embeddings ", cfg.max_position_embeddings);
  if (a.split != "all" && a.split != "val") fail("--split must be all or val (got \"", a.split, "\")");
  std::unique_ptr<data::ValSource> val;
  if (a.split == "val") {
    // Exactly the held-out split `onebit train --val-fraction` used on this data.
    if (!a.text.empty()) fail("--split val needs --data (the file the model was trained on)");
    data::DataOptions o;
    o.path = a.data;
    o.val_fraction = a.val_fraction;
    o.threads = a.threads;
    data::Dataset ds = data::open_dataset(o, *lm.tokenizer);
    if (!ds.val) fail("--split val: --val-fraction ", a.val_fraction, " leaves no held-out data");
    val = std::move(ds.val);
  } else {
    std::shared_ptr<const data::TokenSequence> seq;
    std::string desc;
    if (!a.text.empty()) {
      seq = std::make_shared<data::TokenVector>(lm.tokenizer->encode(a.text));
      desc = "--text";
    } else if (fs::path(a.data).extension() == ".tokens") {
      auto tf = std::make_shared<const data::TokenFile>(a.data);
      data::check_token_file_matches(*tf, *lm.tokenizer);
      if (tf->header().vocab_size > static_cast<uint32_t>(cfg.vocab_size))
        fail(a.data, ": vocab size ", tf->header().vocab_size, " exceeds the model's ", cfg.vocab_size);
      seq = std::make_shared<data::TokenFileSlice>(tf, 0, tf->size());
      desc = a.data;
    } else {
      if (!fs::is_regular_file(a.data)) fail(a.data, ": data file not found");
      seq = std::make_shared<data::TokenVector>(lm.tokenizer->encode(read_file(a.data)));
      desc = a.data;
    }
    if (seq->size() < 2) fail(desc, ": needs at least 2 tokens to evaluate (has ", seq->size(), ")");
    val = std::make_unique<data::ValSource>(seq, *lm.tokenizer, desc);
  }
  lm.model->set_quant_state({model::QuantPhase::Hard, 0.0f});  // inference runs the quantized model
  train::EvalResult r = train::evaluate(*lm.model, *val, a.batch_size, T, a.max_batches);
  if (a.json_out) {
    std::printf("%s\n", json{{"loss", r.loss}, {"perplexity", r.perplexity}, {"bits_per_byte", r.bits_per_byte}, {"nats_per_byte", r.nats_per_byte},
                             {"tokens", r.tokens}, {"bytes", r.bytes}}
                            .dump()
                            .c_str());
  } else {
    std::printf("loss %.4f nats/token (%.4f nats/byte, %.4f bits/byte) perplexity %.3f  (%llu tokens, %llu bytes, seq %d)\n",
                r.loss, r.nats_per_byte, r.bits_per_byte, r.perplexity, static_cast<unsigned long long>(r.tokens),
                static_cast<unsigned long long>(r.bytes), T);
  }
}
}  // namespace

void add_eval_command(CLI::App& app) {
  auto* sub = app.add_subcommand("eval", "Evaluate a model dir (quantized, as deployed): loss, perplexity, bits per byte");
  auto a = std::make_shared<EvalArgs>();
  sub->add_option("--model,--model-dir,-m", a->model, "Model dir (config.json, model.safetensors, tokenizer.json)")
      ->required();
  sub->add_option("--data", a->data, "Text file (tokenized with the model's tokenizer) or .tokens file");
  sub->add_option("--text", a->text, "Evaluate this string instead of a file");
  sub->add_option("--split", a->split,
                  "all: the whole --data; val: exactly the held-out split `onebit train` used on this file "
                  "(its last --val-fraction)")
      ->capture_default_str();
  sub->add_option("--val-fraction", a->val_fraction, "With --split val: the --val-fraction the model was trained with")
      ->capture_default_str();
  sub->add_option("--tokenizer", a->tokenizer, "Override the model dir's tokenizer.json");
  sub->add_option("--batch-size,-b", a->batch_size, "Windows per forward pass")->capture_default_str();
  sub->add_option("--seq-len", a->seq_len, "Tokens per window (default: min(256, max_position_embeddings))");
  sub->add_option("--max-batches", a->max_batches, "Evaluate at most this many batches (0 = the whole input)")
      ->capture_default_str();
  sub->add_option("--threads", a->threads, "CPU threads (0 = all cores)")->capture_default_str();
  sub->add_flag("--json", a->json_out, "Print one JSON object instead of a line of text");
  sub->callback([a]() { run_eval(*a); });
}

}  // namespace onebit::cli
