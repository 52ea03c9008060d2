#pragma once
// The model that generate, chat and bench run: a model dir (config.json, model.safetensors,
// tokenizer.json, optional tokenizer_config.json) or a llama.cpp GGUF file (*.gguf: config, weights,
// tokenizer and chat template from the one file).
#include <memory>
#include <string>

#include "onebit/data/tokenizer.h"
#include "onebit/infer/chat_template.h"
#include "onebit/infer/model_weights.h"

namespace onebit::cli {

struct RuntimeModel {
  infer::ModelWeights weights;
  std::unique_ptr<data::Tokenizer> tokenizer;  // null unless asked for
  infer::ChatTemplate chat_template;            // Plain unless the model names a known one
};

// `tokenizer_override` (a tokenizer.json, a dir holding one, or "byte") replaces the model's own.
// A tokenizer with more ids than the model's vocab_size is an error naming both.
RuntimeModel load_runtime_model(const std::string& model, const std::string& tokenizer_override, bool want_tokenizer);

}  // namespace onebit::cli
