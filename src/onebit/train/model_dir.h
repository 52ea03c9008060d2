#pragma once
// Model dirs (DESIGN.md "Files"): config.json, model.safetensors (f32 master weights named as in
// Transformer::params_info()), tokenizer.json. Each file is written to a temp name and renamed.
#include <memory>
#include <string>

#include "onebit/core/fs.h"
#include "onebit/data/tokenizer.h"
#include "onebit/model/transformer.h"

namespace onebit::train {

void save_model_dir(const fs::path& dir, model::Transformer& model, const std::string& tokenizer_json);

// Copies every parameter from a safetensors file; a missing tensor, an extra tensor or a shape that
// differs is an error naming the file and tensor (e.g. a checkpoint from another config).
void load_weights(const fs::path& safetensors_path, model::Transformer& model);

// Errors if the config.json in `dir` differs from `cfg`, naming the first differing key.
void check_same_config(const fs::path& dir, const model::ModelConfig& cfg);

struct LoadedModel {
  std::unique_ptr<model::Transformer> model;
  std::unique_ptr<data::Tokenizer> tokenizer;
};
// Loads config.json, model.safetensors and tokenizer.json (tokenizer_spec overrides the latter).
LoadedModel load_model_dir(const fs::path& dir, const std::string& tokenizer_spec = "");

}  // namespace onebit::train
