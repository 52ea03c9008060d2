#pragma once
// Checkpoints (DESIGN.md "Files"): <output>/checkpoints/step-000500/ holds the model dir files,
// optimizer.safetensors ("<param>.exp_avg", "<param>.exp_avg_sq") and trainer_state.json. The dir is
// written under a temp name and renamed when complete; then <output>/checkpoints/latest (a small
// text file holding the dir name) is replaced atomically. Only the newest `keep` are kept.
#include <optional>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/core/json_util.h"
#include "onebit/model/transformer.h"
#include "onebit/train/adamw.h"
#include "onebit/train/train_options.h"

namespace onebit::train {

std::string checkpoint_name(int64_t step);  // "step-000500"

fs::path save_checkpoint(const fs::path& output_dir, int64_t step, model::Transformer& model, AdamW& opt,
                         const json& trainer_state, const std::string& tokenizer_json, int keep);

// AdamW's moments for the whole arena on the host, t its step count: what optimizer.safetensors
// holds. Data-parallel ranks each own a shard; rank 0 gathers them into this to write a checkpoint.
struct OptimizerMoments {
  std::vector<float> m, v;
  int64_t t = 0;
};
// The same checkpoint from moments already on the host (num_params() values each).
fs::path save_checkpoint(const fs::path& output_dir, int64_t step, model::Transformer& model,
                         const OptimizerMoments& moments, const json& trainer_state, const std::string& tokenizer_json,
                         int keep);

// The checkpoint `latest` names, or nullopt when there is none. A `latest` naming a missing dir is
// an error.
std::optional<fs::path> find_latest_checkpoint(const fs::path& output_dir);

// trainer_state.json, with every field type- and range-checked.
struct TrainerState {
  int64_t step = 0;  // optimizer steps completed
  uint64_t tokens_seen = 0;
  json data;                // the training BatchSource's state (it validates the contents itself)
  std::string dropout_rng;  // Rng::state_string()
  uint64_t config_hash = 0, tokenizer_hash = 0;
  std::optional<int> threads;  // absent in older checkpoints
  int64_t optimizer_steps = 0;  // AdamW's t; equals step
  int world_size = 1;           // data-parallel ranks that trained it (absent in older checkpoints: 1)
  TrainOptions run;             // the trajectory options ("run"), validated like the flags
};

// Validates a parsed trainer_state.json; errors name `where` (the file) and the key.
TrainerState parse_trainer_state(const json& state, const std::string& where);

// Validates and loads a checkpoint into an already-built model (same config) and optimizer; returns
// trainer_state.json (checked by parse_trainer_state). Errors name the file at fault (corrupt
// safetensors, other config, a field of the wrong type or out of range, ...).
json load_checkpoint(const fs::path& dir, model::Transformer& model, AdamW& opt);

}  // namespace onebit::train
