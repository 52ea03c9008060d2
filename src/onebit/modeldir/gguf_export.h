#pragma once
// A onebit model as a GGUF file that upstream llama.cpp runs unchanged.
//
// Architecture: a config with sub-layer norms (sub_ln) goes out as llama.cpp's "bitnet" (attn_sub_norm
// over hidden, ffn_sub_norm over intermediate, SwiGLU, NEOX RoPE, tied embeddings); one without as
// "llama" (q/k rows permuted from rotate-half to llama.cpp's interleaved RoPE, as its converter does).
// Anything else (QK-norm, relu2/gelu, residual_scale != 1, binary/int8 layers, ...) is an error
// naming the config key. relu2 in particular (transformers' BitNet default, bitnet-b1.58-2B-4T): no
// upstream llama.cpp graph computes relu2(gate) * up with sub-norms (docs/design-notes.md "GGUF").
//
// Ternary linears: the codes t = clamp(roundeven(W/g), -1, 1) with the model's own scale rule (the
// trainer's Hard phase: g = mean|W| + 1e-5; model_type "bitnet": g = max(mean|W|, 1e-5), as
// transformers), computed by the training kernels, stored as TQ2_0/TQ1_0 blocks with d = 1 (exact), and g
// as an F32 "<tensor>.scale" of shape {1}, which llama.cpp's graph multiplies into the matmul output
// (build_lora_mm: ggml_mul(mul_mat(W, x), W_s)). --type f16 stores the codes in F16 with the same
// scale tensors. Norms are F32; the embedding (= the tied LM head) F16 or F32.
#include <functional>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/model/config.h"
#include "onebit/model/transformer.h"

namespace onebit::modeldir {

enum class GgufWeightType { TQ2_0, TQ1_0, F16 };
// "tq2_0", "tq1_0", "f16"; an error naming `flag` otherwise.
GgufWeightType gguf_weight_type_from_string(const std::string& s, const std::string& flag);

struct GgufExportOptions {
  GgufWeightType type = GgufWeightType::TQ2_0;
  bool embedding_f32 = false;  // token_embd (and output) in F32 instead of F16
  std::string name;            // general.name
};

// "bitnet" or "llama"; an error naming the config key that prevents export (`where` = the config).
std::string gguf_architecture(const model::ModelConfig& cfg, const GgufExportOptions& opt, const std::string& where);

// The f32 master values of one parameter (row-major, the ParamInfo's shape).
using ParamReader = std::function<std::vector<float>(const model::ParamInfo&)>;

void export_gguf(const model::ModelConfig& cfg, const ParamReader& read, const std::string& tokenizer_json,
                 const fs::path& out, const GgufExportOptions& opt, const std::string& where);

// A model dir (config.json, model.safetensors, tokenizer.json) → out.
void export_model_dir_gguf(const fs::path& dir, const fs::path& out, GgufExportOptions opt);

}  // namespace onebit::modeldir
