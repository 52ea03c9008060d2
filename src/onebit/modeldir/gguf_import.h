#pragma once
// A GGUF file of llama.cpp's "bitnet" or "llama" architecture (written by onebit's export or by
// llama.cpp's convert_hf_to_gguf.py; F32/F16/BF16/TQ1_0/TQ2_0 tensors) → a onebit model dir.
//
// The config comes from the architecture metadata. Ternary tensors (every value 0 or ±a for one a,
// after the optional "<name>.scale" is multiplied in) become master weights that onebit's quantizer
// maps back to exactly those codes and that scale: W = t * m, m about (a - 1e-5) / p (p = the
// fraction of nonzero codes), tuned until the training kernels' scale mean|W| + 1e-5 is a to the bit,
// and roundeven(W/a) = t. Other tensors are stored as they are.
// For "llama", q/k rows are permuted back from llama.cpp's interleaved RoPE to rotate-half.
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/model/config.h"
#include "onebit/model/transformer.h"

namespace onebit::modeldir {

// A GGUF model in memory, ready for a Transformer: `params` is the whole parameter arena in the
// layout's order (model::Transformer::upload_params takes it as it is).
struct GgufModel {
  model::ModelConfig config;
  std::string architecture;
  std::vector<model::ParamInfo> layout;  // model::build_param_layout(config).info
  std::vector<float> params;
  std::string tokenizer_json;
  int ternary_tensors = 0;  // linears recognised as ternary (master weights synthesised)
  int other_tensors = 0;    // linears stored with their values as they are
};

// tokenizer_path, when not empty, replaces the tokenizer rebuilt from the GGUF metadata; with
// read_tokenizer false neither is read (tokenizer_json stays empty: a runtime benchmark needs none).
GgufModel read_gguf_model(const fs::path& in, const std::string& tokenizer_path = "", bool read_tokenizer = true);

// read_gguf_model, then config.json, model.safetensors and tokenizer.json into out_dir (each to a
// temp name and renamed).
GgufModel import_gguf(const fs::path& in, const fs::path& out_dir, const std::string& tokenizer_path = "");

}  // namespace onebit::modeldir
