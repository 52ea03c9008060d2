#pragma once
// Checkpoints (DESIGN.md "Files"): <output>/checkpoints/step-000500/ holds the model dir files,
// optimizer.safetensors ("<param>.exp_avg", "<param>.exp_avg_sq") and trainer_state.json. The dir is
// written under a temp name and renamed when complete; then <output>/checkpoints/latest (a small
// text file holding the dir name) is replaced atomically. Only the newest `keep` are kept.
#include <optional>
#include <string>

#include "onebit/core/fs.h"
#include "onebit/core/json_util.h"
#include "onebit/model/transformer.h"
#include "onebit/train/adamw.h"

namespace onebit::train {

std::string checkpoint_name(int64_t step);  // "step-000500"

fs::path save_checkpoint(const fs::path& output_dir, int64_t step, model::Transformer& model, AdamW& opt,
                         const json& trainer_state, const std::string& tokenizer_json, int keep);

// The checkpoint `latest` names, or nullopt when there is none. A `latest` naming a missing dir is
// an error.
std::optional<fs::path> find_latest_checkpoint(const fs::path& output_dir);

// Validates and loads a checkpoint into an already-built model (same config) and optimizer; returns
// trainer_state.json. Errors name the file at fault (corrupt safetensors, other config, ...).
json load_checkpoint(const fs::path& dir, model::Transformer& model, AdamW& opt);

}  // namespace onebit::train
