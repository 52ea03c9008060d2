#pragma once
// Model dirs (DESIGN.md "Files"): config.json, model.safetensors (f32 master weights named as in
// Transformer::params_info()), tokenizer.json. Each file is written to a temp name and renamed.
// Loading a whole model dir with its tokenizer, for eval and generate, is infer/load_model.h.
#include <string>

#include "onebit/core/fs.h"
#include "onebit/model/config.h"
#include "onebit/model/transformer.h"

namespace onebit::modeldir {

void save_model_dir(const fs::path& dir, model::Transformer& model, const std::string& tokenizer_json);

// Errors if the config.json in `dir` differs from `cfg`, naming the first differing key.
void check_same_config(const fs::path& dir, const model::ModelConfig& cfg);

}  // namespace onebit::modeldir
