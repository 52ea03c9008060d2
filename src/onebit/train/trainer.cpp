#include "onebit/train/trainer.h"

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "onebit/core/error.h"
#include "onebit/core/interrupt.h"
#include "onebit/core/json_util.h"
#include "onebit/core/log.h"
#include "onebit/core/memory_usage.h"
#include "onebit/core/progress.h"
#include "onebit/core/rng.h"
#include "onebit/data/dataset.h"
#include "onebit/data/tokenizer.h"
#include "onebit/kernels/threads.h"
#include "onebit/modeldir/model_dir.h"
#include "onebit/train/adamw.h"
#include "onebit/train/checkpoint.h"
#include "onebit/train/evaluate.h"
#include "onebit/train/metrics_log.h"
#include "onebit/train/schedule.h"

namespace onebit::train {

namespace {

using Clock = std::chrono::steady_clock;

// The options that define the run's trajectory; saved in trainer_state.json ("run") and restored
// on resume.
json run_options_json(const TrainOptions& o) {
  return json{{"data", o.data},
              {"model_config", o.model_config},
              {"tokenizer", o.tokenizer},
              {"batch_size", o.batch_size},
              {"seq_len", o.seq_len},
              {"accumulation_steps", o.accumulation_steps},
              {"max_steps", o.max_steps},
              {"lr", o.lr},
              {"min_lr", o.min_lr},
              {"warmup_steps", o.warmup_steps},
              {"schedule", o.schedule},
              {"weight_decay", o.weight_decay},
              {"beta1", o.beta1},
              {"beta2", o.beta2},
              {"eps", o.eps},
              {"grad_clip", o.grad_clip},
              {"quant_warmup_steps", o.quant_warmup_steps},
              {"quant_anneal_steps", o.quant_anneal_steps},
              {"quant_k_start", o.quant_k_start},
              {"quant_k_end", o.quant_k_end},
              {"val_fraction", o.val_fraction},
              {"seed", o.seed}};
}

// Flags the user did not type take the checkpoint's values; typed flags must agree with it
// (max_steps may change, which reshapes the LR decay; that is announced).
void restore_run_options(TrainOptions& o, const json& saved, const std::string& where) {
  json mine = run_options_json(o);
  for (auto it = saved.begin(); it != saved.end(); ++it) {
    const std::string& key = it.key();
    if (!mine.contains(key)) continue;
    if (o.explicit_flags.count(key) && mine[key] != *it) {
      std::string flag = "--" + key;
      for (char& c : flag) c = c == '_' ? '-' : c;
      if (key == "max_steps") {
        log_warn(flag, " ", mine[key].dump(), " differs from the checkpoint's ", it->dump(),
                 ": the learning-rate schedule is stretched from here on");
        continue;
      }
      if (key == "data" || key == "tokenizer" || key == "model_config") {
        // Paths may be spelled differently (relative vs absolute); the checkpoint's data/tokenizer
        // hashes and config are verified separately.
        continue;
      }
      fail(flag, " ", mine[key].dump(), " differs from ", it->dump(), " in ", where,
           "; to resume, leave it out or pass the same value (or pass --no-resume to start over)");
    }
    mine[key] = *it;
  }
  o.data = mine["data"].get<std::string>();
  if (!o.explicit_flags.count("model_config")) o.model_config = mine["model_config"].get<std::string>();
  if (!o.explicit_flags.count("tokenizer")) o.tokenizer = mine["tokenizer"].get<std::string>();
  o.batch_size = mine["batch_size"];
  o.seq_len = mine["seq_len"];
  o.accumulation_steps = mine["accumulation_steps"];
  if (!o.explicit_flags.count("max_steps")) o.max_steps = mine["max_steps"];
  o.lr = mine["lr"];
  o.min_lr = mine["min_lr"];
  o.warmup_steps = mine["warmup_steps"];
  o.schedule = mine["schedule"].get<std::string>();
  o.weight_decay = mine["weight_decay"];
  o.beta1 = mine["beta1"];
  o.beta2 = mine["beta2"];
  o.eps = mine["eps"];
  o.grad_clip = mine["grad_clip"];
  o.quant_warmup_steps = mine["quant_warmup_steps"];
  o.quant_anneal_steps = mine["quant_anneal_steps"];
  o.quant_k_start = mine["quant_k_start"];
  o.quant_k_end = mine["quant_k_end"];
  o.val_fraction = mine["val_fraction"];
  o.seed = mine["seed"];
}

void resolve_defaults(TrainOptions& o) {
  if (o.min_lr < 0) o.min_lr = o.lr * 0.1;
  if (o.warmup_steps < 0) o.warmup_steps = std::min<int64_t>(100, o.max_steps / 20);
  if (o.quant_warmup_steps < 0) o.quant_warmup_steps = o.max_steps / 10;
  if (o.quant_anneal_steps < 0) o.quant_anneal_steps = (o.max_steps * 3) / 10;
}

void validate(const TrainOptions& o) {
  if (o.output_dir.empty()) fail("--output-dir is required");
  if (o.batch_size <= 0) fail("--batch-size must be positive (got ", o.batch_size, ")");
  if (o.seq_len <= 0) fail("--seq-len must be positive (got ", o.seq_len, ")");
  if (o.accumulation_steps <= 0) fail("--accumulation-steps must be positive (got ", o.accumulation_steps, ")");
  if (o.max_steps <= 0) fail("--max-steps must be positive (got ", o.max_steps, ")");
  if (o.save_every < 0) fail("--save-every must be >= 0 (got ", o.save_every, ")");
  if (o.eval_every < 0) fail("--eval-every must be >= 0 (got ", o.eval_every, ")");
  if (!(o.lr > 0)) fail("--lr must be positive (got ", o.lr, ")");
  if (o.min_lr > o.lr) fail("--min-lr ", o.min_lr, " is above --lr ", o.lr);
  if (o.weight_decay < 0) fail("--weight-decay must be >= 0 (got ", o.weight_decay, ")");
  if (o.grad_clip < 0) fail("--grad-clip must be >= 0 (got ", o.grad_clip, "; 0 disables clipping)");
  if (o.quant_warmup_steps < 0 || o.quant_anneal_steps < 0) fail("--quant-warmup-steps/--quant-anneal-steps must be >= 0");
  if (!(o.quant_k_start > 0) || o.quant_k_end < o.quant_k_start) fail("--quant-k-start must be > 0 and <= --quant-k-end");
  if (!(o.val_fraction >= 0 && o.val_fraction < 1)) fail("--val-fraction must be in [0, 1) (got ", o.val_fraction, ")");
  if (o.checkpoint_segments < 0) fail("--gradient-checkpointing-segments must be >= 0");
  lr_kind_from_string(o.schedule);
}

// Temp files and dirs of a run that was killed mid-write are removed; a fresh start (nothing to
// resume, or --no-resume) also drops the old checkpoints, whose `latest` would otherwise win later.
void remove_leftovers(const fs::path& out, bool fresh_start) {
  // AtomicFileWriter's "<file>.tmp-<pid>" and save_checkpoint's ".tmp-step-NNNNNN-<pid>".
  auto is_temp = [](const std::string& name) {
    const size_t at = name.find(".tmp-");
    return at != std::string::npos && !name.empty() && std::isdigit(static_cast<unsigned char>(name.back()));
  };
  for (const fs::path& dir : {out, out / "checkpoints"}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (is_temp(e.path().filename().string())) fs::remove_all(e.path());
  }
  if (fresh_start && fs::exists(out / "checkpoints")) {
    log_info("starting from scratch: removing the old checkpoints in ", (out / "checkpoints").string());
    fs::remove_all(out / "checkpoints");
  }
}

void check_vocab_fits(const model::ModelConfig& cfg, const data::Tokenizer& tok, const std::string& tokenizer_spec,
                      const std::string& config_file) {
  if (tok.vocab_size() > cfg.vocab_size)
    fail("--tokenizer ", tokenizer_spec, " has ", tok.vocab_size(), " ids but vocab_size is ", cfg.vocab_size, " in ",
         config_file, "; raise vocab_size there to at least ", tok.vocab_size(), " or use a smaller tokenizer");
}

// The same test load_model_config uses to look a name up among the presets.
bool is_preset_name(const std::string& spec) {
  return !fs::exists(spec) && spec.find('/') == std::string::npos && spec.find(".json") == std::string::npos;
}

// A preset's vocab_size is only a default (the byte tokenizer's 257): it grows to fit the tokenizer,
// rounded up to a multiple of 64 so the embedding/head matmuls stay aligned. A config file the user
// wrote is taken literally.
void fit_vocab_to_tokenizer(model::ModelConfig& cfg, const data::Tokenizer& tok, const std::string& tokenizer_spec,
                            const std::string& config_spec) {
  if (tok.vocab_size() <= cfg.vocab_size) return;
  if (!is_preset_name(config_spec)) {
    const fs::path p = fs::is_directory(config_spec) ? fs::path(config_spec) / "config.json" : fs::path(config_spec);
    check_vocab_fits(cfg, tok, tokenizer_spec, p.string());
    return;
  }
  const int padded = (tok.vocab_size() + 63) / 64 * 64;
  log_info("model config ", config_spec, ": vocab_size ", cfg.vocab_size, " -> ", padded, " to fit --tokenizer ",
           tokenizer_spec, " (", tok.vocab_size(), " ids, rounded up to a multiple of 64)");
  cfg.vocab_size = padded;
  cfg.validate(cat("model config ", config_spec, " with vocab_size ", padded));
}

std::vector<DecayRange> decay_ranges(const model::Transformer& m) {
  std::vector<DecayRange> r;
  for (const auto& p : m.params_info()) r.push_back({p.offset, p.numel, p.decay});
  return r;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

float accumulate_gradients(model::Transformer& model, data::BatchSource& source, int B, int T, int accum,
                           uint64_t dropout_seed) {
  std::vector<int32_t> in(static_cast<size_t>(B) * T), tg(in.size());
  model.zero_grad();
  double loss = 0;
  for (int a = 0; a < accum; ++a) {
    source.next_batch(B, T, in.data(), tg.data());
    model.set_dropout_seed(mix_seed(dropout_seed, static_cast<uint64_t>(a)));
    loss += model.forward(in.data(), tg.data(), B, T);
    model.backward(1.0f / static_cast<float>(accum));
  }
  return static_cast<float>(loss / accum);
}

int run_training(TrainOptions opt) {
  const int threads = kernels::set_num_threads(opt.threads);
  const fs::path out = opt.output_dir;
  if (opt.output_dir.empty()) fail("--output-dir is required");

  // Everything is validated and loaded before anything in the output dir is touched.
  std::optional<fs::path> resume_dir;
  if (!opt.resume.empty()) {
    resume_dir = fs::path(opt.resume);
    if (fs::is_regular_file(*resume_dir / "latest") || fs::is_directory(*resume_dir / "checkpoints")) {
      auto l = find_latest_checkpoint(fs::is_directory(*resume_dir / "checkpoints") ? *resume_dir : resume_dir->parent_path());
      if (!l) fail("--resume ", opt.resume, ": no checkpoint found");
      resume_dir = *l;
    }
    if (!fs::is_directory(*resume_dir)) fail("--resume ", opt.resume, ": checkpoint dir not found");
  } else if (!opt.no_resume) {
    resume_dir = find_latest_checkpoint(out);
  }
  json state;
  if (resume_dir) {
    const fs::path sp = *resume_dir / "trainer_state.json";
    if (!fs::exists(sp)) fail(sp.string(), ": missing from the checkpoint");
    state = read_json_file(sp);
    restore_run_options(opt, json_get<json>(state, "run", sp.string()), sp.string());
  }
  if (opt.data.empty()) fail("--data is required (a text file, a .tokens file or a dataset dir)");
  resolve_defaults(opt);
  validate(opt);

  const bool config_from_checkpoint = resume_dir && !opt.explicit_flags.count("model_config");
  model::ModelConfig cfg = model::load_model_config(config_from_checkpoint ? resume_dir->string() : opt.model_config);
  auto tok = data::load_tokenizer(resume_dir && !opt.explicit_flags.count("tokenizer") ? (*resume_dir).string() : opt.tokenizer);
  if (resume_dir && (config_from_checkpoint || is_preset_name(opt.model_config))) {
    // A resumed run keeps the vocab its checkpoint was trained with (a preset typed again on the
    // command line is not re-fitted; the rest of it must still match the checkpoint's config).
    const fs::path saved = *resume_dir / "config.json";
    if (!config_from_checkpoint) cfg.vocab_size = model::load_model_config(saved.string()).vocab_size;
    check_vocab_fits(cfg, *tok, opt.tokenizer, saved.string());
  } else {
    fit_vocab_to_tokenizer(cfg, *tok, opt.tokenizer, opt.model_config);
  }
  if (opt.seq_len > cfg.max_position_embeddings)
    fail("--seq-len ", opt.seq_len, " exceeds the model's max_position_embeddings ", cfg.max_position_embeddings);

  data::DataOptions dopt;
  dopt.path = opt.data;
  dopt.val_fraction = opt.val_fraction;
  dopt.seed = opt.seed;
  dopt.threads = threads;
  data::Dataset ds = data::open_dataset(dopt, *tok);

  model::Transformer model(cfg);
  model.init_weights(opt.seed);
  model.set_checkpoint_segments(opt.checkpoint_segments);
  model.set_training(true);
  AdamW adam(model.num_params(),
             AdamWConfig{static_cast<float>(opt.beta1), static_cast<float>(opt.beta2), static_cast<float>(opt.eps),
                         static_cast<float>(opt.weight_decay)},
             decay_ranges(model));
  Rng dropout_rng(mix_seed(opt.seed, 0xD50D));
  int64_t step = 0;
  uint64_t tokens_seen = 0;
  const std::string tok_json = tok->to_json();
  const uint64_t config_hash = data::fnv1a64(cfg.to_json().dump());
  if (resume_dir) {
    state = load_checkpoint(*resume_dir, model, adam);
    const std::string sp = (*resume_dir / "trainer_state.json").string();
    step = json_get<int64_t>(state, "step", sp);
    tokens_seen = json_get<uint64_t>(state, "tokens_seen", sp);
    if (json_get<uint64_t>(state, "tokenizer_hash", sp) != tok->hash())
      fail(sp, ": the checkpoint was trained with a different tokenizer than --tokenizer ", opt.tokenizer);
    ds.train->restore(json_get<json>(state, "data", sp));
    dropout_rng.set_state_string(json_get<std::string>(json_get<json>(state, "rng", sp), "dropout", sp + ": rng"));
    const int saved_threads = json_get_or<int>(state, "threads", threads, sp);
    if (saved_threads != threads)
      log_warn("resuming with ", threads, " threads (the checkpoint used ", saved_threads,
               "): losses will not be bitwise identical to an uninterrupted run");
    if (step >= opt.max_steps)
      log_info("checkpoint ", resume_dir->filename().string(), " is at step ", step, " >= --max-steps ", opt.max_steps);
  }

  const LrSchedule lr_sched{lr_kind_from_string(opt.schedule), opt.lr, opt.min_lr, opt.warmup_steps, opt.max_steps};
  const QuantSchedule q_sched{opt.quant_warmup_steps, opt.quant_anneal_steps, opt.quant_k_start, opt.quant_k_end};

  // From here on the output dir is written.
  fs::create_directories(out);
  remove_leftovers(out, /*fresh_start=*/!resume_dir);
  MetricsLog metrics(out / "metrics.jsonl", resume_dir ? step : -1);
  install_interrupt_handler();
  log_info("train: ", cfg.num_hidden_layers, " layers, d ", cfg.hidden_size, ", ", model.num_params(), " params; data ",
           ds.train->describe(), "; batch ", opt.batch_size, "x", opt.seq_len, "x", opt.accumulation_steps, "; ",
           threads, " threads", resume_dir ? cat("; resumed from ", resume_dir->string(), " at step ", step) : std::string());

  const int B = opt.batch_size, T = opt.seq_len, A = opt.accumulation_steps;
  const uint64_t tokens_per_step = static_cast<uint64_t>(B) * T * A;
  int64_t last_saved = resume_dir ? step : -1;
  double last_lr = 0;
  model::QuantState last_q = q_sched.at(step);

  auto trainer_state = [&]() {
    return json{{"step", step},
                {"tokens_seen", tokens_seen},
                {"data", ds.train->state()},
                {"rng", {{"dropout", dropout_rng.state_string()}}},
                {"quant", {{"phase", to_string(last_q.phase)}, {"k", last_q.k}}},
                {"lr", last_lr},
                {"config_hash", config_hash},
                {"tokenizer_hash", tok->hash()},
                {"threads", threads},
                {"optimizer", {{"name", "adamw"}, {"t", adam.steps_taken()}}},
                {"run", run_options_json(opt)}};
  };
  // On a TTY the progress bar owns the current line: clear it, log, and the bar redraws below.
  const bool tty = ProgressBar::stderr_is_tty();
  auto log_below_bar = [&](const std::string& msg) {
    if (tty) std::fputs("\r\033[K", stderr);
    log_info(msg);
  };
  auto save = [&]() {
    fs::path d = save_checkpoint(out, step, model, adam, trainer_state(), tok_json, opt.keep_checkpoints);
    last_saved = step;
    log_below_bar(cat("saved checkpoint ", d.string()));
  };
  // Periodic evals score the first --eval-batches of the held-out pass; the final one all of it.
  auto run_eval = [&](int64_t max_batches) -> EvalResult {
    if (!ds.val) return {};
    EvalResult r = evaluate(model, *ds.val, B, T, max_batches);
    metrics.append(json{{"step", step}, {"val_loss", r.loss}, {"val_ppl", r.perplexity}, {"val_bpb", r.bits_per_byte}, {"val_nats_per_byte", r.nats_per_byte},
                        {"val_tokens", r.tokens}});
    return r;
  };

  ProgressBar bar("train", static_cast<uint64_t>(std::max<int64_t>(0, opt.max_steps - step)), "step/s");
  bar.plain_interval_s = 5.0;
  const int64_t first_step = step;
  bool interrupted = false;
  while (step < opt.max_steps) {
    const auto t0 = Clock::now();
    last_q = q_sched.at(step);
    model.set_quant_state(last_q);
    const float loss = accumulate_gradients(model, *ds.train, B, T, A, dropout_rng.next_u64());
    if (!std::isfinite(loss)) fail("loss is ", loss, " at step ", step + 1, "; lower --lr or check the data");
    const double gnorm = clip_grad_norm(model.grads(), opt.grad_clip);
    last_lr = lr_sched.at(step);
    adam.step(model.params(), model.grads(), static_cast<float>(last_lr));
    ++step;
    tokens_seen += tokens_per_step;
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    const model::WeightStats ws = model.weight_stats();
    const double tok_s = static_cast<double>(tokens_per_step) / dt;
    metrics.append(json{{"step", step},
                        {"loss", loss},
                        {"lr", last_lr},
                        {"grad_norm", gnorm},
                        {"tokens_per_s", tok_s},
                        {"step_ms", dt * 1e3},
                        {"phase", to_string(last_q.phase)},
                        {"k", last_q.k},
                        {"w_neg", ws.neg},
                        {"w_zero", ws.zero},
                        {"w_pos", ws.pos},
                        {"tokens", tokens_seen},
                        {"peak_rss_mb", static_cast<double>(peak_rss_bytes()) / (1 << 20)},
                        {"activation_mb", static_cast<double>(model.peak_activation_bytes()) / (1 << 20)}});
    bar.update(static_cast<uint64_t>(step - first_step),
               cat("step ", step, "/", opt.max_steps, " loss ", fmt("%.4f", loss), " ", fmt("%.0f", tok_s), " tok/s ",
                   to_string(last_q.phase), last_q.phase == model::QuantPhase::Soft ? fmt(" k=%.3g", last_q.k) : ""));
    if (opt.eval_every > 0 && step % opt.eval_every == 0 && step < opt.max_steps) {
      EvalResult r = run_eval(opt.eval_batches);
      if (ds.val)
        log_below_bar(cat("step ", step, ": val loss ", fmt("%.4f", r.loss), " nats/token, ", fmt("%.4f", r.bits_per_byte),
                          " bits/byte"));
    }
    // The checkpoint at max_steps is saved after the final eval, so that a checkpoint at the end
    // implies its eval line is already in metrics.jsonl.
    if (opt.save_every > 0 && step % opt.save_every == 0 && step < opt.max_steps) save();
    if (interrupt_requested() && step < opt.max_steps) {
      interrupted = true;
      break;
    }
  }
  bar.finish();
  if (interrupted) {
    if (last_saved != step) save();
    log_info("interrupted at step ", step, ": checkpoint saved; run the same command again to resume");
    return 0;
  }
  if (step == first_step && resume_dir) {
    log_info("training was already complete at step ", step, "; writing the final model again");
  } else {
    if (ds.val) {
      EvalResult r = run_eval(0);
      std::fprintf(stdout, "final: val_loss %.4f nats/token (%.4f nats/byte, %.4f bits/byte) ppl %.3f at step %lld (%llu held-out tokens)\n",
                   r.loss, r.nats_per_byte, r.bits_per_byte, r.perplexity, static_cast<long long>(step),
                   static_cast<unsigned long long>(r.tokens));
    }
    if (last_saved != step) save();
  }
  modeldir::save_model_dir(out, model, tok_json);
  std::fprintf(stdout, "model saved to %s (config.json, model.safetensors, tokenizer.json)\n", out.c_str());
  return 0;
}

}  // namespace onebit::train
