#pragma once
// What the runtime is built from: a model config and its tensors by Hugging Face name, each either
// f32 values (master weights, quantized and packed when the runtime loads them) or ternary codes
// with one per-tensor scale (a GGUF TQ1_0/TQ2_0 file, or random weights for benchmarks). Readers of
// other formats (formats/gguf) fill this; load_model_dir_weights fills it from a model dir.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/model/config.h"

namespace onebit::infer {

struct WeightTensor {
  std::vector<int64_t> shape;  // row-major; linear weights are [out_features, in_features]
  std::vector<float> values;   // f32 values, or empty when the tensor comes as ternary codes
  std::vector<int8_t> ternary_codes;  // -1, 0, +1, one per element (values is empty then)
  float ternary_scale = 0.0f;         // effective weight = code * ternary_scale
  size_t numel() const;
  bool is_ternary_codes() const { return values.empty() && !ternary_codes.empty(); }
};

struct ModelWeights {
  model::ModelConfig config;
  std::map<std::string, WeightTensor> tensors;
  std::string source;  // file or dir the weights came from, for error messages

  // Error naming `source` and the tensor when it is absent or its shape is not `shape`.
  const WeightTensor& get(const std::string& name, const std::vector<int64_t>& shape) const;
  WeightTensor take(const std::string& name, const std::vector<int64_t>& shape);  // moves it out
};

// config.json and model.safetensors of a model dir; the weights are checked against the config's
// parameter layout before anything of the config's size is allocated (a hostile config.json
// allocates nothing).
ModelWeights load_model_dir_weights(const fs::path& dir);

// A llama.cpp GGUF file of the bitnet or llama architecture (modeldir::read_gguf_model: config from
// its metadata, ternary tensors as master weights that pack back to exactly the file's codes and
// scale). When tokenizer_json is given, the file's tokenizer (tokenizer.huggingface.json or rebuilt
// from its gpt2 metadata; an error when it has neither) goes there; its "tokenizer.chat_template"
// (empty when absent) goes to *chat_template when given. Peak memory is about twice the model in f32
// (the reader's arena, then the tensors).
ModelWeights load_gguf_weights(const fs::path& file, std::string* tokenizer_json = nullptr,
                               std::string* chat_template = nullptr);

// A path ending in .gguf → load_gguf_weights, anything else → load_model_dir_weights.
bool is_gguf_path(const fs::path& p);

// Random ternary weights for every ternary linear (codes -1, 0, +1 drawn 3:2:3, scale 0.02) and
// N(0, 0.02) f32 values for everything else, norms 1: for speed measurements of shapes that have
// no trained weights (the bench command's `random:<preset>`).
ModelWeights random_model_weights(const model::ModelConfig& cfg, uint64_t seed);

}  // namespace onebit::infer
