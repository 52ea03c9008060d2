#pragma once
// Hugging Face config.json <-> onebit ModelConfig for the architectures onebit runs exactly:
// "bitnet" (BitNetForCausalLM, onebit's model_type bitnet) and "llama" (LlamaForCausalLM: onebit's
// architecture without QK-norm and sub-norms, a full-precision start for ternary training).
// Anything that model would compute differently (biases, RoPE scaling, another head_dim, the
// quantizer's extra RMSNorm) is refused with an error naming the key.
#include <string>

#include "onebit/core/json_util.h"
#include "onebit/model/config.h"

namespace onebit::hfio {

enum class HfFamily { BitNet, Llama };
// quantization_config's linear_class: BitLinear divides by weight_scale, AutoBitLinear multiplies
// (docs/design-notes.md "Hugging Face BitNet").
enum class LinearClass { BitLinear, AutoBitLinear };
enum class QuantMode { Online, Offline };

struct HfModel {
  HfFamily family = HfFamily::BitNet;
  model::ModelConfig config;  // what it imports as
  bool quantized = false;     // a BitNet with quantization_config (without one transformers runs nn.Linear)
  LinearClass linear_class = LinearClass::BitLinear;
  QuantMode mode = QuantMode::Offline;
};

const char* to_string(HfFamily f);
const char* to_string(LinearClass c);
const char* to_string(QuantMode m);

HfModel parse_hf_config(const json& j, const std::string& where);

// transformers' config.json for a model_type bitnet onebit config, with quantization_config.
json bitnet_hf_config(const model::ModelConfig& c, LinearClass linear_class, QuantMode mode);

}  // namespace onebit::hfio
