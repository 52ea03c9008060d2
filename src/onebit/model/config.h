#pragma once
// Model configuration: config.json with Hugging Face style keys, plus onebit's quantization block.
// Unknown keys, missing keys and impossible shapes are errors that name the key and the file.
#include <cstdint>
#include <map>
#include <string>

#include "onebit/core/json_util.h"
#include "onebit/kernels/kernels.h"

namespace onebit::model {

// Weight precision of one linear layer. JSON spellings: "ternary", "binary", "int8", "bf16", "f32".
enum class Precision { F32, BF16, Int8, Ternary, Binary };
// Activation quantization of the input of quantized linears. JSON: "int8", "none".
enum class ActBits { None, Int8 };
// JSON: "swiglu", "relu2", "gelu".
enum class HiddenAct { SwiGLU, ReLU2, GELU };
// JSON "model_type". Onebit ("onebit", the default): DESIGN.md's architecture and numerics, every
// switch below free. BitNet ("bitnet"): exactly transformers' BitNetForCausalLM (docs/design-notes.md
// "Hugging Face BitNet"): no QK-norm, sub-norms, residual scale 1, relu2 or swiglu (HF "silu"), and
// transformers' ternary weight scale max(mean|W|, 1e-5) in place of mean|W| + 1e-5.
enum class Architecture { Onebit, BitNet };

const char* to_string(Precision p);
// The quantizer a weight of precision p goes through (F32: none), for the trainer and the runtime alike.
inline kernels::WeightQuant to_weight_quant(Precision p) {
  switch (p) {
    case Precision::F32:
      return kernels::WeightQuant::None;
    case Precision::BF16:
      return kernels::WeightQuant::BF16;
    case Precision::Int8:
      return kernels::WeightQuant::Int8;
    case Precision::Ternary:
      return kernels::WeightQuant::Ternary;
    case Precision::Binary:
      return kernels::WeightQuant::Binary;
  }
  return kernels::WeightQuant::None;
}

Precision precision_from_string(const std::string& s, const std::string& where);
// Bits per weight when packed for deployment (ternary 1.58 → 2 packed, binary 1, int8 8, ...).
double packed_bits(Precision p);

struct QuantizationConfig {
  // weight_bits per layer kind. The sandwich rule: embedding and lm_head default to f32.
  Precision attention = Precision::Ternary;  // q/k/v/o projections
  Precision mlp = Precision::Ternary;        // gate/up/down projections
  Precision embedding = Precision::F32;
  Precision lm_head = Precision::F32;
  ActBits activation_bits = ActBits::Int8;
  // The precision map: per-layer overrides keyed by the module name without ".weight",
  // e.g. "model.layers.3.mlp.down_proj": "int8".
  std::map<std::string, Precision> overrides;
};

struct ModelConfig {
  int vocab_size = 0;
  int hidden_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;  // GQA; equals num_attention_heads for plain MHA
  int intermediate_size = 0;
  int max_position_embeddings = 0;
  float rope_theta = 10000.0f;
  float rms_norm_eps = 1e-5f;
  bool qk_norm = true;          // RMSNorm on each head's q and k before RoPE
  bool sub_ln = true;           // RMSNorm before o_proj and before down_proj (BitNet sub-layer norm)
  float residual_scale = 1.0f;  // each block adds residual_scale * f(x) to the stream
  bool tie_word_embeddings = false;
  // Training only, nanoGPT's sites: the embedding output, the attention probabilities and both residual
  // branches (docs/design-notes.md "Model").
  float dropout = 0.0f;
  HiddenAct hidden_act = HiddenAct::SwiGLU;
  Architecture architecture = Architecture::Onebit;
  QuantizationConfig quantization;

  int head_dim() const { return hidden_size / num_attention_heads; }
  // Precision of module `name` ("model.layers.3.self_attn.q_proj"), after overrides.
  Precision precision_of(const std::string& module_name) const;

  static ModelConfig from_json(const json& j, const std::string& where);
  json to_json() const;
  void validate(const std::string& where) const;
  uint64_t num_parameters() const;
};

// A preset name ("tiny", "25m", "125m", "0.3b-stack", "1b", "8b", "bitnet-2b4t") or a path to a config.json or to
// a directory holding one. Presets live in configs/<name>.json (found via ONEBIT_CONFIG_DIR, next to
// the executable's ../share/onebit/configs, or the source tree).
ModelConfig load_model_config(const std::string& name_or_path);

}  // namespace onebit::model
