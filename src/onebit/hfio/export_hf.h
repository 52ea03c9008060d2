#pragma once
// `onebit export --format hf`: an onebit model dir of model_type bitnet -> a dir that transformers
// loads with from_pretrained as BitNetForCausalLM: config.json with quantization_config,
// model.safetensors with transformers' names, tokenizer.json (+ tokenizer_config.json).
#include <string>

#include "onebit/core/fs.h"

namespace onebit::hfio {

enum class HfWeights {
  Packed,  // microsoft/bitnet-b1.58-2B-4T: autobitlinear, offline; uint8[out/4, in] + weight_scale = g
  Master,  // f32 master weights: linear_class autobitlinear, online (transformers quantizes them)
};

HfWeights hf_weights_from_string(const std::string& s, const std::string& where);

// Errors (naming the file and key) unless the model is model_type bitnet with ternary attention and
// MLP, int8 activations, f32 embedding and head and no precision_map: exactly transformers' BitNet.
void export_hf(const fs::path& model_dir, const fs::path& out_dir, HfWeights weights);

}  // namespace onebit::hfio
