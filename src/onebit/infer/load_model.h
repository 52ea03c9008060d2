#pragma once
// A whole model dir as the training network: config.json, model.safetensors and the tokenizer (what
// eval runs; the packed runtime loads the same files through model_weights.h instead).
#include <memory>
#include <string>

#include "onebit/core/fs.h"
#include "onebit/data/tokenizer.h"
#include "onebit/kernels/backend.h"
#include "onebit/model/transformer.h"

namespace onebit::infer {

struct LoadedModel {
  std::unique_ptr<model::Transformer> model;
  std::unique_ptr<data::Tokenizer> tokenizer;
};

// Loads config.json, model.safetensors and tokenizer.json (tokenizer_spec overrides the latter), into
// a model on `device`'s backend.
// The weights' names, dtypes and shapes are checked against the config's parameter layout before
// the model is built, so a config that does not match the weights allocates nothing.
LoadedModel load_model_dir(const fs::path& dir, const std::string& tokenizer_spec = "",
                           kernels::Device device = kernels::Device::Cpu);

}  // namespace onebit::infer
