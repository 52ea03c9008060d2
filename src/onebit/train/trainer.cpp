#include "onebit/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

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
#include "onebit/modeldir/weights.h"
#include "onebit/train/adamw.h"
#include "onebit/train/checkpoint.h"
#include "onebit/train/data_parallel.h"
#include "onebit/train/evaluate.h"
#include "onebit/train/memory_plan.h"
#include "onebit/train/metrics_log.h"
#include "onebit/train/run_setup.h"
#include "onebit/train/schedule.h"

namespace onebit::train {

namespace {

using Clock = std::chrono::steady_clock;

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

// The options in effect: the flags (already range-checked), merged with the checkpoint's run on
// resume (checked by parse_trainer_state), defaults resolved, the combination checked.
TrainOptions resolve_options(TrainOptions opt, const std::optional<TrainerState>& saved, const std::string& where) {
  if (saved) restore_run_options(opt, saved->run, where);
  resolve_defaults(opt);
  check_option_combination(opt);
  return opt;
}

// One training run, in the order it happens: the constructor validates and loads everything
// (options, checkpoint, config, tokenizer, data, model, optimizer) without touching the output dir;
// run() then opens the output dir, trains step by step, evaluates, checkpoints and writes the model.
class TrainingRun {
 public:
  TrainingRun(const TrainOptions& flags, const DatasetFactory& open_data);
  int run();

 private:
  enum class LoopEnd { Done, Interrupted };
  void load_config_and_tokenizer();
  void load_config_and_tokenizer_of_run();  // --model-config / --tokenizer, or the checkpoint's
  // --init-from applies to a fresh run only: a run with checkpoints resumes from them.
  bool init_from() const { return !opt_.init_from.empty() && !resume_dir_; }
  void set_horizon_from_data(const TrainOptions& flags, uint64_t pass_tokens);
  void build_model();
  void restore_checkpoint();
  void open_output_dir();
  LoopEnd step_loop();
  void log_step(float loss, double gnorm, double seconds);
  EvalResult evaluate_and_log(int64_t max_batches, bool progress);
  json trainer_state(const json& data_state, const std::string& rng_state) const;
  void save(const json& data_state, const std::string& rng_state);
  void save() { save(ds_.train->state(), dropout_rng_.state_string()); }
  void log_below_bar(const std::string& msg) const;
  // Tokens of one optimizer step over all ranks.
  uint64_t tokens_per_step_() const {
    return static_cast<uint64_t>(opt_.batch_size) * opt_.seq_len * opt_.accumulation_steps * dp_->world_size();
  }
  int finish();
  void keep_if_best(double val_loss);

  TrainOptions opt_;
  // The ranks of a data-parallel launch (a world of one for a plain run): rank 0 alone writes files.
  std::unique_ptr<DataParallel> dp_;
  fs::path out_;
  int threads_ = 0;
  kernels::Device device_ = kernels::Device::Cpu;
  std::optional<fs::path> resume_dir_;
  std::optional<TrainerState> saved_;
  model::ModelConfig cfg_;
  std::unique_ptr<data::Tokenizer> tok_;
  std::string tok_json_;
  uint64_t config_hash_ = 0;
  data::Dataset ds_;
  std::unique_ptr<model::Transformer> model_;
  std::unique_ptr<AdamW> adam_;
  Rng dropout_rng_;
  LrSchedule lr_sched_;
  QuantSchedule q_sched_;
  std::optional<MetricsLog> metrics_;
  int64_t step_ = 0, first_step_ = 0, last_saved_ = -1;
  uint64_t tokens_seen_ = 0;
  double last_lr_ = 0;
  model::QuantState last_q_;
  bool tty_ = false;
  // The data and dropout RNG state at the start of the current step: what a checkpoint saves when
  // Ctrl-C abandons the step halfway through its micro-batches.
  json step_start_data_;
  std::string step_start_rng_;
};

TrainingRun::TrainingRun(const TrainOptions& flags, const DatasetFactory& open_data) : out_(flags.output_dir) {
  if (flags.output_dir.empty()) fail("--output-dir is required");
  check_output_dir(out_);
  check_option_ranges(flags);  // before --threads is used and before any checkpoint is read
  device_ = resolve_run_device(flags);
  // The data-parallel layer on the backend the model lives on (a world of one for a plain run); on
  // CUDA it picks this rank's GPU before anything starts the backend.
  dp_ = std::make_unique<DataParallel>(device_);
  threads_ = kernels::set_num_threads(dp_->threads_for_rank(flags.threads));
  resume_dir_ = find_resume_dir(flags, out_);
  std::string where;
  if (resume_dir_) {
    const fs::path sp = *resume_dir_ / "trainer_state.json";
    if (!fs::exists(sp)) fail(sp.string(), ": missing from the checkpoint");
    where = sp.string();
    saved_ = parse_trainer_state(read_json_file(sp), where);
    dp_->check_saved_data_world(saved_->data, where);
    dp_->adapt_saved_batch(*saved_, where);
  }
  opt_ = resolve_options(flags, saved_, where);
  load_config_and_tokenizer();
  data::DataOptions dopt;
  dopt.path = opt_.data;
  dopt.val_fraction = opt_.val_fraction;
  dopt.seed = opt_.seed;
  dopt.threads = threads_;
  const DataRanks ranks{dp_->rank(), dp_->world_size(), std::max(1, dp_->launch().local_world_size)};
  ds_ = open_data ? open_data(opt_, *tok_, threads_, resume_dir_.has_value(), ranks) : data::open_dataset(dopt, *tok_);
  ds_.train = dp_->rank_data(std::move(ds_.train), ds_.per_rank);
  if (ds_.pass_tokens && !resume_dir_) set_horizon_from_data(flags, *ds_.pass_tokens);
  build_model();
  if (resume_dir_) restore_checkpoint();
  lr_sched_ = LrSchedule{lr_kind_from_string(opt_.schedule), opt_.lr, opt_.min_lr, opt_.warmup_steps, opt_.max_steps};
  q_sched_ = QuantSchedule{opt_.quant_warmup_steps, opt_.quant_anneal_steps, opt_.quant_k_start, opt_.quant_k_end};
  last_q_ = q_sched_.at(step_);
}

void TrainingRun::load_config_and_tokenizer() {
  if (init_from()) {
    // A fresh run from a model dir: its config (as is: the weights fix the vocab) and, unless
    // --tokenizer says otherwise, its tokenizer.
    const fs::path dir = opt_.init_from;
    if (!fs::is_directory(dir)) fail("--init-from ", printable(opt_.init_from), ": model dir not found");
    cfg_ = model::load_model_config(dir.string());
    const bool own_tok = !opt_.explicit_flags.count("tokenizer");
    tok_ = data::load_tokenizer(own_tok ? dir.string() : opt_.tokenizer);
    check_vocab_fits(cfg_, *tok_, own_tok ? (dir / "tokenizer.json").string() : opt_.tokenizer,
                     (dir / "config.json").string());
  } else {
    load_config_and_tokenizer_of_run();
  }
  if (opt_.seq_len > cfg_.max_position_embeddings)
    fail("--seq-len ", opt_.seq_len, " exceeds the model's max_position_embeddings ", cfg_.max_position_embeddings);
  // Host memory; on the GPU an allocation that does not fit fails with its own message.
  if (device_ == kernels::Device::Cpu) check_fits_in_memory(cfg_, opt_.batch_size, opt_.seq_len);
  tok_json_ = tok_->to_json();
  config_hash_ = data::fnv1a64(cfg_.to_json().dump());
}

void TrainingRun::load_config_and_tokenizer_of_run() {
  const bool config_from_checkpoint = resume_dir_ && !opt_.explicit_flags.count("model_config");
  cfg_ = model::load_model_config(config_from_checkpoint ? resume_dir_->string() : opt_.model_config);
  tok_ = data::load_tokenizer(resume_dir_ && !opt_.explicit_flags.count("tokenizer") ? resume_dir_->string()
                                                                                        : opt_.tokenizer);
  if (resume_dir_ && (config_from_checkpoint || is_preset_name(opt_.model_config))) {
    // A resumed run keeps the vocab its checkpoint was trained with (a preset typed again on the
    // command line is not re-fitted; the rest of it must still match the checkpoint's config).
    const fs::path saved = *resume_dir_ / "config.json";
    if (!config_from_checkpoint) cfg_.vocab_size = model::load_model_config(saved.string()).vocab_size;
    check_vocab_fits(cfg_, *tok_, opt_.tokenizer, saved.string());
  } else {
    fit_vocab_to_tokenizer(cfg_, *tok_, opt_.tokenizer, opt_.model_config);
  }
}

// A one-pass source that knows its size (stack-stream --max-global-steps 0): the schedules' horizon
// (and the defaults derived from it) is the steps of that pass, that of the longest rank's part
// when each rank reads its own; saved in the run like any --max-steps, so a resume keeps it.
void TrainingRun::set_horizon_from_data(const TrainOptions& flags, uint64_t pass_tokens) {
  const uint64_t tokens = dp_->max_over_ranks(pass_tokens);
  const uint64_t per_step = static_cast<uint64_t>(opt_.batch_size) * opt_.seq_len * opt_.accumulation_steps;
  TrainOptions f = flags;
  f.max_steps = std::clamp<int64_t>(static_cast<int64_t>((tokens + per_step - 1) / per_step), 1, kMaxSteps);
  opt_ = resolve_options(f, saved_, "");
  log_info("one pass over the data: about ", tokens, " tokens", ds_.per_rank && dp_->world_size() > 1 ? " (the largest rank's part)" : "",
           ", ", opt_.max_steps, " steps of ", per_step, " tokens", dp_->world_size() > 1 ? " per rank" : "",
           "; the LR and quantization schedules span them, and training ends with the data");
}

void TrainingRun::build_model() {
  log_info(describe(memory_plan(cfg_, opt_.batch_size, opt_.seq_len, opt_.checkpoint_segments, dp_->world_size())));
  model_ = model::make_transformer(cfg_, device_);
  model_->init_weights(opt_.seed);
  if (init_from()) {
    modeldir::load_weights(fs::path(opt_.init_from) / "model.safetensors", *model_);
    log_info("starting from ", opt_.init_from, " (its weights, a fresh optimizer, step 0)");
  }
  model_->set_checkpoint_segments(opt_.checkpoint_segments);
  model_->set_training(true);
  adam_ = dp_->make_optimizer(
      model_->num_params(),
      AdamWConfig{static_cast<float>(opt_.beta1), static_cast<float>(opt_.beta2), static_cast<float>(opt_.eps),
                  static_cast<float>(opt_.weight_decay)},
      decay_ranges(*model_), model_->ops());
  dropout_rng_ = Rng(mix_seed(opt_.seed, 0xD50D));
}

void TrainingRun::restore_checkpoint() {
  load_checkpoint(*resume_dir_, *model_, *adam_);
  const std::string sp = (*resume_dir_ / "trainer_state.json").string();
  step_ = saved_->step;
  tokens_seen_ = saved_->tokens_seen;
  if (saved_->tokenizer_hash != tok_->hash())
    fail(sp, ": the checkpoint was trained with a different tokenizer than --tokenizer ", printable(opt_.tokenizer));
  try {
    // The source checks its own state; the error gains the file.
    ds_.train->restore(dp_->data_state_of_rank(saved_->data, ds_.per_rank));
  } catch (const Error& e) {
    fail(sp, ": key \"data\": ", e.what());
  }
  dropout_rng_.set_state_string(saved_->dropout_rng);
  const int saved_threads = saved_->threads.value_or(threads_);
  if (saved_threads != threads_)
    log_warn("resuming with ", threads_, " threads (the checkpoint used ", saved_threads,
             "): losses will not be bitwise identical to an uninterrupted run");
  if (step_ >= opt_.max_steps)
    log_info("checkpoint ", resume_dir_->filename().string(), " is at step ", step_, " >= --max-steps ", opt_.max_steps);
}

void TrainingRun::open_output_dir() {
  if (dp_->is_root()) {
    create_output_dir(out_);
    remove_leftovers(out_, /*fresh_start=*/!resume_dir_);
    metrics_.emplace(out_ / "metrics.jsonl", resume_dir_ ? step_ : -1);
  }
  dp_->barrier();  // every rank has read its checkpoint before rank 0 may prune it
  last_saved_ = resume_dir_ ? step_ : -1;
  first_step_ = step_;
  tty_ = ProgressBar::stderr_is_tty();
}

json TrainingRun::trainer_state(const json& data_state, const std::string& rng_state) const {
  return json{{"step", step_},
              {"tokens_seen", tokens_seen_},
              {"data", data_state},
              {"rng", {{"dropout", rng_state}}},
              {"quant", {{"phase", to_string(last_q_.phase)}, {"k", last_q_.k}}},
              {"lr", last_lr_},
              {"config_hash", config_hash_},
              {"tokenizer_hash", tok_->hash()},
              {"threads", threads_},
              {"world_size", dp_->world_size()},
              {"optimizer", {{"name", "adamw"}, {"t", adam_->steps_taken()}}},
              {"run", run_options_json(opt_)}};
}

// On a TTY the progress bar owns the current line: clear it, log, and the bar redraws below.
void TrainingRun::log_below_bar(const std::string& msg) const {
  if (tty_) std::fputs("\r\033[K", stderr);
  log_info(msg);
}

void TrainingRun::save(const json& data_state, const std::string& rng_state) {
  // Every rank sends its optimizer shard; rank 0 writes the same files one process would.
  const OptimizerMoments moments = dp_->gather_moments(*adam_);
  const json data = dp_->gather_data_state(data_state, ds_.per_rank);  // each rank's, where each reads its own
  last_saved_ = step_;
  if (!dp_->is_root()) return;
  const fs::path d = save_checkpoint(out_, step_, *model_, moments, trainer_state(data, rng_state), tok_json_,
                                     opt_.keep_checkpoints);
  log_below_bar(cat("saved checkpoint ", d.string()));
}

EvalResult TrainingRun::evaluate_and_log(int64_t max_batches, bool progress) {
  // Rank 0 evaluates for everyone (the weights are the same on every rank).
  if (!ds_.val || !dp_->is_root()) return {};
  // The batches of the global batch size, so the scored windows are those of a single-process run.
  const int64_t batches = max_batches * dp_->world_size();
  EvalResult r = evaluate(*model_, *ds_.val, opt_.batch_size, opt_.seq_len, batches, progress);
  metrics_->append(json{{"step", step_},
                        {"val_loss", r.loss},
                        {"val_ppl", r.perplexity},
                        {"val_bpb", r.bits_per_byte},
                        {"val_nats_per_byte", r.nats_per_byte},
                        {"val_tokens", r.tokens}});
  return r;
}

void TrainingRun::log_step(float loss, double gnorm, double seconds) {
  if (!metrics_) return;  // not rank 0
  const model::WeightStats ws = model_->weight_stats();
  const uint64_t tokens_per_step = tokens_per_step_();
  json record{{"step", step_},
               {"loss", loss},
               {"lr", last_lr_},
               {"grad_norm", gnorm},
               {"tokens_per_s", static_cast<double>(tokens_per_step) / seconds},
               {"step_ms", seconds * 1e3},
               {"phase", to_string(last_q_.phase)},
               {"k", last_q_.k},
               {"w_neg", ws.neg},
               {"w_zero", ws.zero},
               {"w_pos", ws.pos},
               {"tokens", tokens_seen_},
               {"peak_rss_mb", static_cast<double>(peak_rss_bytes()) / (1 << 20)},
               {"activation_mb", static_cast<double>(model_->peak_activation_bytes()) / (1 << 20)}};
  record.update(ds_.train->step_metrics());  // a stream's data wait and disk use
  if (device_ == kernels::Device::Cuda)  // the most the backend has held: weights, state, activations
    record["gpu_peak_mb"] = static_cast<double>(kernels::cuda_peak_bytes()) / (1 << 20);
  metrics_->append(record);
}

TrainingRun::LoopEnd TrainingRun::step_loop() {
  const int B = opt_.batch_size, T = opt_.seq_len, A = opt_.accumulation_steps, W = dp_->world_size();
  // Rank 0 alone draws the bar (and logs): the ranks' lines would interleave.
  std::optional<ProgressBar> bar;
  if (dp_->is_root()) {
    bar.emplace("train", static_cast<uint64_t>(std::max<int64_t>(0, opt_.max_steps - step_)), "step/s");
    bar->plain_interval_s = 5.0;
  }
  auto finish_bar = [&bar] {
    if (bar) bar->finish();
  };
  while (step_ < opt_.max_steps) {
    if (ds_.train->at_end()) {
      finish_bar();
      log_info("the training data ended at step ", step_, " (before --max-steps ", opt_.max_steps, ")");
      return LoopEnd::Done;
    }
    const auto t0 = Clock::now();
    step_start_data_ = ds_.train->state();
    step_start_rng_ = dropout_rng_.state_string();
    const model::QuantState q = q_sched_.at(step_);
    model_->set_quant_state(q);
    // The step's first forward counts the weight codes that log_step reports (no pass of their own).
    if (metrics_) model_->request_weight_stats();
    // Several ranks finish every step they start (a rank that left mid-step would leave the others
    // waiting in the all-reduce) and agree on stopping after it.
    // On GPUs the last micro-batch's backward starts each gradient bucket's all-reduce as its layers
    // finish (the hook); reduce_gradients then sends what is left and waits for all of them.
    std::optional<float> loss = accumulate_gradients(
        *model_, *ds_.train, B, T, A, dropout_rng_.next_u64(), W > 1 ? std::function<bool()>{} : interrupt_requested,
        W, dp_->grads_ready_hook(model_->grads().data(), model_->num_params()));
    if (!loss) {
      finish_bar();
      return LoopEnd::Interrupted;  // the half-done step is dropped; its start state is what is saved
    }
    dp_->reduce_gradients(model_->grads().data(), model_->num_params());
    if (step_ == first_step_ && dp_->distributed() && dp_->is_root()) log_below_bar(dp_->describe_reduction());
    const DataParallel::StepEnd agreed = dp_->end_step(*loss, interrupt_requested());
    loss = agreed.loss;
    if (!std::isfinite(*loss)) fail("loss is ", *loss, " at step ", step_ + 1, "; lower --lr or check the data");
    last_q_ = q;
    last_lr_ = lr_sched_.at(step_);
    // Norm, clip factor and AdamW run on the backend; the host reads back only the norm it logs.
    adam_->clip_and_step(model_->params().data(), model_->grads().data(), static_cast<float>(last_lr_),
                         opt_.grad_clip);
    dp_->gather_params(model_->params().data(), model_->num_params());  // ZeRO-1: each rank updated its shard
    const double gnorm = adam_->read_grad_norm();
    ++step_;
    tokens_seen_ += tokens_per_step_();
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    log_step(*loss, gnorm, dt);
    if (bar)
      bar->update(static_cast<uint64_t>(step_ - first_step_),
                  cat("step ", step_, "/", opt_.max_steps, " loss ", fmt("%.4f", *loss), " ",
                      fmt("%.0f", static_cast<double>(tokens_per_step_()) / dt), " tok/s ", to_string(q.phase),
                      q.phase == model::QuantPhase::Soft ? fmt(" k=%.3g", q.k) : "",
                      ds_.train->progress().empty() ? "" : " " + ds_.train->progress()));
    if (opt_.eval_every > 0 && step_ % opt_.eval_every == 0 && step_ < opt_.max_steps) {
      EvalResult r = evaluate_and_log(opt_.eval_batches, /*progress=*/false);
      if (ds_.val && dp_->is_root()) {
        log_below_bar(cat("step ", step_, ": val loss ", fmt("%.4f", r.loss), " nats/token, ",
                          fmt("%.4f", r.bits_per_byte), " bits/byte"));
        if (opt_.save_best) keep_if_best(r.loss);
      }
    }
    // The checkpoint at max_steps is saved after the final eval, so that a checkpoint at the end
    // implies its eval line is already in metrics.jsonl.
    if (opt_.save_every > 0 && step_ % opt_.save_every == 0 && step_ < opt_.max_steps) save();
    if ((W > 1 ? agreed.stop : interrupt_requested()) && step_ < opt_.max_steps) {
      finish_bar();
      step_start_data_ = ds_.train->state();
      step_start_rng_ = dropout_rng_.state_string();
      return LoopEnd::Interrupted;
    }
  }
  finish_bar();
  return LoopEnd::Done;
}

// --save-best: <output>/best holds the model of the lowest periodic evaluation so far among those in
// the schedule's final phase, with best.json (step, val_loss). The directory is written beside and
// swapped in by renames, so a crash leaves the old best or the new one; a resumed run reads best.json
// and only replaces a model it beats.
void TrainingRun::keep_if_best(double val_loss) {
  if (last_q_.phase != q_sched_.at(opt_.max_steps - 1).phase) return;
  const fs::path best = out_ / "best", tmp = out_ / "best.tmp", old = out_ / "best.old";
  if (fs::exists(best / "best.json")) {
    const json j = read_json_file(best / "best.json");
    if (j.contains("val_loss") && j["val_loss"].get<double>() <= val_loss) return;
  }
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  modeldir::save_model_dir(tmp, *model_, tok_json_);
  write_json_atomic(tmp / "best.json", json{{"step", step_}, {"val_loss", val_loss}});
  fs::remove_all(old);
  if (fs::exists(best)) fs::rename(best, old);
  fs::rename(tmp, best);
  fs::remove_all(old);
  log_below_bar(cat("step ", step_, ": best held-out loss so far; model saved to ", best.string()));
}

int TrainingRun::finish() {
  if (step_ == first_step_ && resume_dir_) {
    log_info("training was already complete at step ", step_, "; writing the final model again");
  } else {
    if (ds_.val && dp_->is_root()) {
      const EvalResult r = evaluate_and_log(opt_.final_eval_batches, /*progress=*/true);
      const std::string scope =
          r.whole_pass ? cat(r.tokens, " held-out tokens")
                       : cat(r.tokens, " held-out tokens: the first ", r.batches,
                             " batches; --final-eval-batches 0 scores the whole split");
      std::fprintf(stdout, "final: val_loss %.4f nats/token (%.4f nats/byte, %.4f bits/byte) ppl %.3f at step %lld (%s)\n",
                   r.loss, r.nats_per_byte, r.bits_per_byte, r.perplexity, static_cast<long long>(step_), scope.c_str());
    }
    if (last_saved_ != step_) save();
  }
  if (!dp_->is_root()) return 0;
  modeldir::save_model_dir(out_, *model_, tok_json_);
  std::fprintf(stdout, "model saved to %s (config.json, model.safetensors, tokenizer.json)\n", out_.c_str());
  return 0;
}

int TrainingRun::run() {
  // From here on the output dir is written.
  open_output_dir();
  install_interrupt_handler();
  // (Ranks other than 0 log warnings only: DataParallel.)
  const std::string ranks = dp_->distributed() ? cat(" on each of ", dp_->world_size(),
                                                     dp_->world_size() == 1 ? " rank (" : " ranks (", dp_->comm().name(), ")")
                                                : "";
  log_info("train: ", cfg_.num_hidden_layers, " layers, d ", cfg_.hidden_size, ", ", model_->num_params(),
           " params; data ", ds_.train->describe(), "; batch ", opt_.batch_size, "x", opt_.seq_len, "x",
           opt_.accumulation_steps, ranks, "; ", kernels::describe(device_),
           device_ == kernels::Device::Cpu ? cat(", ", threads_, " threads") : std::string(),
           resume_dir_ ? cat("; resumed from ", resume_dir_->string(), " at step ", step_) : std::string());
  if (step_loop() == LoopEnd::Interrupted) {
    if (last_saved_ != step_) save(step_start_data_, step_start_rng_);
    log_info("interrupted at step ", step_, ": checkpoint saved; run the same command again to resume");
    return 0;
  }
  return finish();
}

}  // namespace

std::optional<float> accumulate_gradients(model::Transformer& model, data::BatchSource& source, int B, int T,
                                          int accum, uint64_t dropout_seed, const std::function<bool()>& stop,
                                          int world_size, const model::Transformer::GradsReadyHook& last_grads_ready) {
  std::vector<int32_t> in(static_cast<size_t>(B) * T), tg(in.size());
  model.zero_grad();
  for (int a = 0; a < accum; ++a) {
    if (stop && stop()) {
      model.take_losses();  // drop the abandoned step's pending losses
      return std::nullopt;
    }
    source.next_batch(B, T, in.data(), tg.data());
    model.set_dropout_seed(mix_seed(dropout_seed, static_cast<uint64_t>(a)));
    model.forward_async(in.data(), tg.data(), B, T);
    // Only the last backward finishes the step's gradients: the hook reports them then.
    if (a == accum - 1 && last_grads_ready) model.set_grads_ready_hook(last_grads_ready);
    model.backward(1.0f / static_cast<float>(accum * world_size));
    if (a == accum - 1 && last_grads_ready) model.set_grads_ready_hook({});
  }
  // The micro-batches' losses stay on the backend until here: one download per step.
  double loss = 0;
  for (float l : model.take_losses()) loss += l;
  return static_cast<float>(loss / accum);
}

float accumulate_gradients(model::Transformer& model, data::BatchSource& source, int B, int T, int accum,
                           uint64_t dropout_seed) {
  return *accumulate_gradients(model, source, B, T, accum, dropout_seed, {});
}

int run_training(TrainOptions opt, const DatasetFactory& open_data) { return TrainingRun(opt, open_data).run(); }

}  // namespace onebit::train
