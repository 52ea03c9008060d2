#pragma once
// The options of `onebit train`, each declared once in one table (train_options()): its flag names,
// type, help text, valid range, and whether it belongs to the run's trajectory (saved in
// trainer_state.json "run" and restored on resume). The CLI registers its flags from the table,
// run_options_json / restore_run_options iterate over it, and check_option_ranges applies the same
// ranges to typed flags and to values read back from trainer_state.json, so a value that would
// hang the run or silently produce NaN weights is refused up front, naming the flag or file and key.
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "onebit/core/json_util.h"

namespace onebit::train {

struct TrainOptions {
  std::string data;                  // text file, .tokens file or dataset dir
  std::string model_config = "tiny";
  std::string tokenizer = "byte";
  std::string output_dir;
  int batch_size = 16;
  int seq_len = 256;
  int accumulation_steps = 1;
  int checkpoint_segments = 0;
  int64_t max_steps = 1000;
  int64_t save_every = 0;            // 0: only at the end (and on Ctrl-C)
  int64_t eval_every = 0;            // 0: only at the end
  int64_t eval_batches = 16;         // 0: the whole held-out split
  int64_t final_eval_batches = 256;  // 0: the whole held-out split
  int keep_checkpoints = 3;
  double lr = 2e-3;
  double min_lr = -1;                // -1: lr / 10
  int64_t warmup_steps = -1;         // -1: min(100, max_steps / 20)
  std::string schedule = "cosine";
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;
  int64_t quant_warmup_steps = -1;   // -1: 10% of max_steps
  int64_t quant_anneal_steps = -1;   // -1: 30% of max_steps
  double quant_k_start = 2.0, quant_k_end = 100.0;  // k -> 0 would shrink weights to 0
  double val_fraction = 0.1;
  uint64_t seed = 1234;
  std::string resume;                // checkpoint dir; empty: <output>/checkpoints/latest if present
  bool no_resume = false;            // ignore an existing latest and start fresh
  bool save_best = false;            // keep the best-evaluated model of the final phase in <output>/best
  std::string init_from;             // model dir whose config, tokenizer and weights a fresh run starts from
  std::string start_phase = "fp";    // fp | soft | hard: where the quantization schedule starts
  int threads = 0;
  std::string device = "auto";       // cpu | cuda | auto (resolve_device in run_setup.h)
  // Flags the user typed (by key, e.g. "lr"): on resume, these must agree with the checkpoint;
  // flags not typed take the checkpoint's values.
  std::set<std::string> explicit_flags;
};

// Upper bounds that keep a typo from hanging the run or allocating without limit. Tokens per
// micro-batch (batch-size x seq-len) are bounded again by memory once the model config is known.
inline constexpr int64_t kMaxBatchSize = 1 << 20;
inline constexpr int64_t kMaxSeqLen = 1 << 20;
inline constexpr int64_t kMaxTokensPerMicroBatch = 1 << 24;
inline constexpr int64_t kMaxAccumulationSteps = 4096;
inline constexpr int64_t kMaxSteps = 1'000'000'000'000;  // also bounds "step" in trainer_state.json
inline constexpr int64_t kMaxThreads = 4096;

using OptionField = std::variant<std::string TrainOptions::*, bool TrainOptions::*, int TrainOptions::*,
                                 int64_t TrainOptions::*, uint64_t TrainOptions::*, double TrainOptions::*>;

// What a typed flag may do against a checkpoint's saved value on resume.
enum class OnResume {
  MustMatch,  // a different value is an error (it would silently change the run)
  MayChange,  // allowed, with a warning (max_steps: the LR schedule stretches)
  Path,       // not compared: paths may be spelled differently; their contents are hashed and checked
};

struct TrainOption {
  const char* key;    // "batch_size": the key in trainer_state.json "run" and in explicit_flags
  const char* names;  // CLI11 names, the canonical long flag first: "--batch-size,-b"
  const char* help;
  OptionField field;
  bool trajectory = false;  // saved in trainer_state.json "run" and restored on resume
  OnResume on_resume = OnResume::MustMatch;
  bool required = false;
  bool show_default = true;  // --help shows the default (off where the default is computed)
  // Numbers: the valid range, ends included unless *_open; doubles must also be finite.
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false, max_open = false;
  bool minus_one_is_auto = false;  // -1 = computed from other options (resolve_defaults)
  std::vector<std::string> choices = {};  // strings: the allowed values (empty: any)

  std::string flag() const;  // "--batch-size"
};

const std::vector<TrainOption>& train_options();

// The trajectory options, by key.
json run_options_json(const TrainOptions& o);

// Every option's value is within its declared range; errors name the flag.
void check_option_ranges(const TrainOptions& o);

// Reads trainer_state.json's "run" (`where` names the file): every trajectory key must be present,
// of the right type and within range; errors name the file and key ("run.lr").
TrainOptions run_options_from_json(const json& run, const std::string& where);

// Resume: options the user did not type take the saved run's values; typed ones must agree with it
// (see OnResume). `saved` comes from run_options_from_json.
void restore_run_options(TrainOptions& o, const TrainOptions& saved, const std::string& where);

// Fills the -1 ("auto") options from the others.
void resolve_defaults(TrainOptions& o);

// The checks that span several options (min-lr <= lr, k-end >= k-start, tokens per micro-batch,
// ...) and the required ones; run after resolve_defaults.
void check_option_combination(const TrainOptions& o);

}  // namespace onebit::train
