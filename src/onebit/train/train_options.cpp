#include "onebit/train/train_options.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "onebit/core/error.h"
#include "onebit/core/log.h"

namespace onebit::train {

namespace {

using O = TrainOptions;
constexpr double kIntMax = std::numeric_limits<int>::max();

std::vector<TrainOption> make_table() {
  return {
      {.key = "data",
       .names = "--data,--data-dir",
       .help = "Training data: a UTF-8 text file or a dir of them (tokenized once into a cached .tokens file), "
               "a .tokens file, or a .jsonl[.gz|.zst] file (streamed). The last --val-fraction is held out "
               "for evaluation. (--data-dir: alias of the Rust CLI)",
       .field = &O::data,
       .trajectory = true,
       .on_resume = OnResume::Path,
       .show_default = false},
      {.key = "model_config",
       .names = "--model-config,--config",
       .help = "Model config: a preset (tiny, 25m, 125m, ...) or a config.json / dir holding one "
               "(--config: alias of the Rust CLI). A preset's vocab_size grows to fit --tokenizer (its id "
               "count rounded up to a multiple of 64, logged); a config.json's vocab_size must already fit. "
               "On resume the checkpoint's config (and vocab) is kept.",
       .field = &O::model_config,
       .trajectory = true,
       .on_resume = OnResume::Path},
      {.key = "tokenizer",
       .names = "--tokenizer",
       .help = "\"byte\" (built-in byte-level tokenizer) or a tokenizer.json / dir holding one",
       .field = &O::tokenizer,
       .trajectory = true,
       .on_resume = OnResume::Path},
      {.key = "output_dir",
       .names = "--output-dir,-o",
       .help = "Run dir: metrics.jsonl, checkpoints/, and the final model",
       .field = &O::output_dir,
       .required = true,
       .show_default = false},
      {.key = "batch_size",
       .names = "--batch-size,-b",
       .help = "Sequences per micro-batch",
       .field = &O::batch_size,
       .trajectory = true,
       .min = 1,
       .max = kMaxBatchSize},
      {.key = "seq_len",
       .names = "--seq-len",
       .help = "Tokens per sequence (<= max_position_embeddings)",
       .field = &O::seq_len,
       .trajectory = true,
       .min = 1,
       .max = kMaxSeqLen},
      {.key = "accumulation_steps",
       .names = "--accumulation-steps",
       .help = "Micro-batches accumulated per optimizer step (effective batch = batch-size x this; equal to one "
               "batch that size only without dropout and with the same number of scored targets per micro-batch)",
       .field = &O::accumulation_steps,
       .trajectory = true,
       .min = 1,
       .max = kMaxAccumulationSteps},
      {.key = "checkpoint_segments",
       .names = "--gradient-checkpointing-segments",
       .help = "Keep activations only at N segment boundaries and recompute each segment in backward "
               "(0 = keep all; saves memory, costs about one extra forward)",
       .field = &O::checkpoint_segments,
       .min = 0,
       .max = 1 << 16},
      {.key = "max_steps",
       .names = "--max-steps",
       .help = "Optimizer steps to train for (total, across resumes)",
       .field = &O::max_steps,
       .trajectory = true,
       .on_resume = OnResume::MayChange,
       .min = 1,
       .max = kMaxSteps},
      {.key = "save_every",
       .names = "--save-every",
       .help = "Save a checkpoint every N steps (0 = only at the end and on Ctrl-C)",
       .field = &O::save_every,
       .min = 0,
       .max = kMaxSteps},
      {.key = "keep_checkpoints",
       .names = "--keep-checkpoints",
       .help = "Keep only the newest K checkpoints (0 = keep all)",
       .field = &O::keep_checkpoints,
       .min = 0,
       .max = kIntMax},
      {.key = "eval_every",
       .names = "--eval-every",
       .help = "Evaluate held-out loss and bits/byte every N steps (0 = only at the end)",
       .field = &O::eval_every,
       .min = 0,
       .max = kMaxSteps},
      {.key = "eval_batches",
       .names = "--eval-batches",
       .help = "Batches of batch-size x seq-len per evaluation during training (0 = the whole held-out split)",
       .field = &O::eval_batches,
       .min = 0,
       .max = kMaxSteps},
      {.key = "final_eval_batches",
       .names = "--final-eval-batches",
       .help = "Batches of batch-size x seq-len scored by the evaluation at the end of training (0 = the whole "
               "held-out split, which on a large corpus can take hours; `onebit eval --split val` does the same)",
       .field = &O::final_eval_batches,
       .min = 0,
       .max = kMaxSteps},
      {.key = "lr",
       .names = "--lr",
       .help = "Peak learning rate",
       .field = &O::lr,
       .trajectory = true,
       .min = 0,
       .min_open = true},
      {.key = "min_lr",
       .names = "--min-lr",
       .help = "Learning-rate floor reached at --max-steps (default: lr / 10)",
       .field = &O::min_lr,
       .trajectory = true,
       .show_default = false,
       .min = 0,
       .minus_one_is_auto = true},
      {.key = "warmup_steps",
       .names = "--warmup-steps",
       .help = "Linear learning-rate warmup steps (default: min(100, max-steps / 20))",
       .field = &O::warmup_steps,
       .trajectory = true,
       .show_default = false,
       .min = 0,
       .max = kMaxSteps,
       .minus_one_is_auto = true},
      {.key = "schedule",
       .names = "--schedule",
       .help = "Learning-rate decay after warmup: cosine, linear or constant",
       .field = &O::schedule,
       .trajectory = true,
       .choices = {"cosine", "linear", "constant"}},
      {.key = "weight_decay",
       .names = "--weight-decay",
       .help = "AdamW decoupled weight decay (not applied to norms and biases)",
       .field = &O::weight_decay,
       .trajectory = true,
       .min = 0},
      {.key = "beta1",
       .names = "--beta1",
       .help = "AdamW beta1, in [0, 1)",
       .field = &O::beta1,
       .trajectory = true,
       .min = 0,
       .max = 1,
       .max_open = true},
      {.key = "beta2",
       .names = "--beta2",
       .help = "AdamW beta2, in [0, 1)",
       .field = &O::beta2,
       .trajectory = true,
       .min = 0,
       .max = 1,
       .max_open = true},
      {.key = "eps",
       .names = "--eps",
       .help = "AdamW epsilon added to the root of the second moment",
       .field = &O::eps,
       .trajectory = true,
       .min = 0,
       .min_open = true},
      {.key = "grad_clip",
       .names = "--grad-clip",
       .help = "Clip the global gradient norm to this (0 = off)",
       .field = &O::grad_clip,
       .trajectory = true,
       .min = 0},
      {.key = "quant_warmup_steps",
       .names = "--quant-warmup-steps",
       .help = "Phase 1: full-precision steps before quantization starts (default: 10% of max-steps)",
       .field = &O::quant_warmup_steps,
       .trajectory = true,
       .show_default = false,
       .min = 0,
       .max = kMaxSteps,
       .minus_one_is_auto = true},
      {.key = "quant_anneal_steps",
       .names = "--quant-anneal-steps",
       .help = "Phase 2: steps of tanh soft quantization with sharpness k rising from --quant-k-start to "
               "--quant-k-end; then phase 3, hard ternary/binary QAT with int8 activations "
               "(default: 30% of max-steps)",
       .field = &O::quant_anneal_steps,
       .trajectory = true,
       .show_default = false,
       .min = 0,
       .max = kMaxSteps,
       .minus_one_is_auto = true},
      {.key = "quant_k_start",
       .names = "--quant-k-start",
       .help = "Soft-phase sharpness k at its start",
       .field = &O::quant_k_start,
       .trajectory = true,
       .min = 0,
       .min_open = true},
      {.key = "quant_k_end",
       .names = "--quant-k-end",
       .help = "Soft-phase sharpness k at its end (rises geometrically; >= --quant-k-start)",
       .field = &O::quant_k_end,
       .trajectory = true,
       .min = 0,
       .min_open = true},
      {.key = "val_fraction",
       .names = "--val-fraction",
       .help = "Fraction of the data held out for evaluation, in [0, 1)",
       .field = &O::val_fraction,
       .trajectory = true,
       .min = 0,
       .max = 1,
       .max_open = true},
      {.key = "seed",
       .names = "--seed",
       .help = "Seed for weights, data order and dropout",
       .field = &O::seed,
       .trajectory = true},
      {.key = "resume",
       .names = "--resume",
       .help = "Resume from this checkpoint dir (or a run dir: its latest). Without it, <output-dir>/"
               "checkpoints/latest is resumed if present. Flags left out take the checkpoint's values.",
       .field = &O::resume,
       .show_default = false},
      {.key = "no_resume",
       .names = "--no-resume",
       .help = "Start from scratch even if <output-dir> has checkpoints (they and metrics.jsonl are replaced)",
       .field = &O::no_resume,
       .show_default = false},
      {.key = "save_best",
       .names = "--save-best",
       .help = "Keep the model with the lowest periodic held-out loss (--eval-every) in <output-dir>/best (with "
               "best.json: step and loss), as nanoGPT keeps its best checkpoint. Only evaluations in the phase "
               "the quantization schedule ends in count (a soft-phase model is not yet ternary)",
       .field = &O::save_best,
       .show_default = false},
      {.key = "init_from",
       .names = "--init-from",
       .help = "Start from this model dir (e.g. `onebit import hf` output): its config.json, tokenizer.json and "
               "weights, with a fresh optimizer at step 0. Not with --model-config. A run that has checkpoints "
               "resumes from them instead.",
       .field = &O::init_from,
       .show_default = false},
      {.key = "start_phase",
       .names = "--start-phase",
       .help = "Where the quantization schedule starts: fp (full-precision warmup, then soft, then hard), soft "
               "(--quant-warmup-steps 0) or hard (both 0: hard ternary QAT from the first step, e.g. fine-tuning "
               "an imported BitNet model)",
       .field = &O::start_phase,
       .choices = {"fp", "soft", "hard"}},
      {.key = "threads",
       .names = "--threads",
       .help = "CPU threads of the kernels' thread pool (0 = all cores, shared among the ranks of a "
               "data-parallel job on one host; resume with the same count for bitwise-identical results)",
       .field = &O::threads,
       .min = 0,
       .max = kMaxThreads},
      {.key = "device",
       .names = "--device",
       .help = "Compute device: cuda (the GPU: bf16 activations, f32 master weights), cpu, or auto (the GPU "
               "when one is visible). Without the flag: $ONEBIT_DEVICE if set, else auto. Checkpoints are the "
               "same files on both: a run may resume on the other device",
       .field = &O::device,
       .show_default = false,
       .choices = {"auto", "cuda", "cpu"}},
  };
}

template <typename T>
constexpr bool is_number_v = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;

std::string bound(double v) { return v == std::floor(v) && std::abs(v) < 1e15 ? cat(static_cast<int64_t>(v)) : cat(v); }

// "in [0, 1)", "> 0", ">= 1".
std::string describe_range(const TrainOption& opt) {
  const bool has_min = std::isfinite(opt.min), has_max = std::isfinite(opt.max);
  if (has_min && has_max)
    return cat("in ", opt.min_open ? "(" : "[", bound(opt.min), ", ", bound(opt.max), opt.max_open ? ")" : "]");
  if (has_min) return cat(opt.min_open ? "> " : ">= ", bound(opt.min));
  return cat(opt.max_open ? "< " : "<= ", bound(opt.max));
}

// `who` names the source: "--lr" or "<file>: key \"run.lr\"".
template <typename T>
void check_value(const TrainOption& opt, const T& v, const std::string& who) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (!opt.choices.empty() && std::find(opt.choices.begin(), opt.choices.end(), v) == opt.choices.end()) {
      std::string list;
      for (const auto& c : opt.choices) list += (list.empty() ? "" : ", ") + c;
      fail(who, " \"", printable(v), "\" is not one of ", list);
    }
  } else if constexpr (is_number_v<T>) {
    const double d = static_cast<double>(v);
    if (opt.minus_one_is_auto && d == -1) return;
    if (!std::isfinite(d)) fail(who, " must be a finite number (got ", v, ")");
    const bool ok = (opt.min_open ? d > opt.min : d >= opt.min) && (opt.max_open ? d < opt.max : d <= opt.max);
    if (!ok)
      fail(who, " must be ", describe_range(opt), opt.minus_one_is_auto ? " (or -1 for the default)" : "", " (got ", v,
           ")");
  }
}

// One value of trainer_state.json "run", type-checked; `who` names file and key.
template <typename T>
T read_json_value(const json& j, const std::string& who) {
  auto wrong = [&](const char* expected) -> T {
    fail(who, " has the wrong type (got ", j.type_name(), ", expected ", expected, ")");
  };
  if constexpr (std::is_same_v<T, std::string>) {
    return j.is_string() ? j.get<std::string>() : wrong("a string");
  } else if constexpr (std::is_same_v<T, bool>) {
    return j.is_boolean() ? j.get<bool>() : wrong("true or false");
  } else if constexpr (std::is_same_v<T, double>) {
    return j.is_number() ? j.get<double>() : wrong("a number");
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    if (!j.is_number_integer()) return wrong("an unsigned integer");
    if (!j.is_number_unsigned() && j.get<int64_t>() < 0) fail(who, " must be >= 0 (got ", j.dump(), ")");
    return j.get<uint64_t>();
  } else {
    if (!j.is_number_integer()) return wrong("an integer");
    if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      fail(who, " is out of range (got ", j.dump(), ")");
    const int64_t v = j.get<int64_t>();
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
      fail(who, " is out of range (got ", j.dump(), ")");
    return static_cast<T>(v);
  }
}

std::string run_key(const std::string& where, const char* key) { return cat(where, ": key \"run.", key, "\""); }

const TrainOption& option(const std::string& key) {
  for (const auto& o : train_options())
    if (key == o.key) return o;
  fail("internal: no training option \"", key, "\"");
}

// The checks that span options. `prefix` starts the message ("" for flags, "<file>: " for a
// checkpoint's run) and `nm(key)` names an option in it.
template <typename Name>
void check_combination(const TrainOptions& o, const std::string& prefix, Name nm) {
  if (o.min_lr > o.lr) fail(prefix, nm("min_lr"), " ", o.min_lr, " is above ", nm("lr"), " ", o.lr);
  if (o.quant_k_end < o.quant_k_start)
    fail(prefix, nm("quant_k_end"), " ", o.quant_k_end, " is below ", nm("quant_k_start"), " ", o.quant_k_start);
  const int64_t tokens = static_cast<int64_t>(o.batch_size) * o.seq_len;
  if (tokens > kMaxTokensPerMicroBatch)
    fail(prefix, nm("batch_size"), " ", o.batch_size, " x ", nm("seq_len"), " ", o.seq_len, " = ", tokens,
         " tokens per micro-batch is above the limit of ", kMaxTokensPerMicroBatch,
         "; use a smaller batch and more --accumulation-steps");
}

}  // namespace

std::string TrainOption::flag() const {
  const std::string n = names;
  return n.substr(0, n.find(','));
}

const std::vector<TrainOption>& train_options() {
  static const std::vector<TrainOption> table = make_table();
  return table;
}

json run_options_json(const TrainOptions& o) {
  json j = json::object();
  for (const auto& opt : train_options())
    if (opt.trajectory) std::visit([&](auto m) { j[opt.key] = o.*m; }, opt.field);
  return j;
}

void check_option_ranges(const TrainOptions& o) {
  for (const auto& opt : train_options()) std::visit([&](auto m) { check_value(opt, o.*m, opt.flag()); }, opt.field);
}

TrainOptions run_options_from_json(const json& run, const std::string& where) {
  if (!run.is_object()) fail(where, ": key \"run\" has the wrong type (got ", run.type_name(), ", expected an object)");
  TrainOptions o;
  for (const auto& opt : train_options()) {
    if (!opt.trajectory) continue;
    auto it = run.find(opt.key);
    if (it == run.end()) fail(where, ": missing key \"run.", opt.key, "\"");
    std::visit(
        [&](auto m) {
          using T = std::remove_reference_t<decltype(o.*m)>;
          o.*m = read_json_value<T>(*it, run_key(where, opt.key));
          check_value(opt, o.*m, run_key(where, opt.key));
        },
        opt.field);
  }
  check_combination(o, where + ": ", [](const char* key) { return cat("\"run.", key, "\""); });
  return o;
}

void restore_run_options(TrainOptions& o, const TrainOptions& saved, const std::string& where) {
  for (const auto& opt : train_options()) {
    if (!opt.trajectory) continue;
    std::visit(
        [&](auto m) {
          if (!o.explicit_flags.count(opt.key)) {
            o.*m = saved.*m;
            return;
          }
          if (o.*m == saved.*m || opt.on_resume == OnResume::Path) return;
          const std::string mine = json(o.*m).dump(), theirs = json(saved.*m).dump();
          if (opt.on_resume == OnResume::MayChange) {
            log_warn(opt.flag(), " ", mine, " differs from the checkpoint's ", theirs,
                     ": the learning-rate schedule is stretched from here on");
            return;
          }
          fail(opt.flag(), " ", mine, " differs from ", theirs, " in ", where,
               "; to resume, leave it out or pass the same value (or pass --no-resume to start over)");
        },
        opt.field);
  }
}

void resolve_defaults(TrainOptions& o) {
  if (o.min_lr == -1) o.min_lr = o.lr * 0.1;
  if (o.warmup_steps == -1) o.warmup_steps = std::min<int64_t>(100, o.max_steps / 20);
  // --start-phase skips schedule phases by zeroing their lengths where the user left them to default.
  if (o.start_phase != "fp" && o.quant_warmup_steps == -1) o.quant_warmup_steps = 0;
  if (o.start_phase == "hard" && o.quant_anneal_steps == -1) o.quant_anneal_steps = 0;
  if (o.quant_warmup_steps == -1) o.quant_warmup_steps = o.max_steps / 10;
  if (o.quant_anneal_steps == -1) o.quant_anneal_steps = (o.max_steps * 3) / 10;
}

void check_option_combination(const TrainOptions& o) {
  if (o.output_dir.empty()) fail("--output-dir is required");
  if (o.data.empty()) fail("--data is required (a text file, a .tokens file or a dataset dir)");
  check_combination(o, "", [](const char* key) { return option(key).flag(); });
  if (o.start_phase != "fp" && o.quant_warmup_steps != 0)
    fail("--start-phase ", o.start_phase, " contradicts --quant-warmup-steps ", o.quant_warmup_steps, " (it needs 0)");
  if (o.start_phase == "hard" && o.quant_anneal_steps != 0)
    fail("--start-phase hard contradicts --quant-anneal-steps ", o.quant_anneal_steps, " (it needs 0)");
  if (!o.init_from.empty() && o.explicit_flags.count("model_config"))
    fail("--init-from takes the model dir's config.json; leave out --model-config");
}

}  // namespace onebit::train
