#pragma once
// Where every parameter lives in the flat parameter arena, with its Hugging Face name, shape and
// precision, and how it is initialised.
#include <cstddef>
#include <vector>

#include "onebit/model/config.h"
#include "onebit/model/transformer.h"

namespace onebit::model {

// Index into ParamLayout::info of each tensor of one decoder layer (-1 when the config has none).
struct LayerParamIndex {
  int input_norm = -1, q = -1, k = -1, v = -1, o = -1, q_norm = -1, k_norm = -1, attn_sub_norm = -1;
  int post_norm = -1, gate = -1, up = -1, down = -1, ffn_sub_norm = -1;
};

struct ParamLayout {
  std::vector<ParamInfo> info;
  std::vector<LayerParamIndex> layers;
  int embed = -1, final_norm = -1, lm_head = -1;  // lm_head == embed when tied
  size_t total = 0;                               // floats
};

ParamLayout build_param_layout(const ModelConfig& cfg);

// Deterministic initial values for every parameter (host memory, `total` floats): linears and the
// embedding N(0, 0.02), output projections (o_proj, down_proj) scaled by 1/sqrt(2L), norms 1.
// Each tensor draws from its own stream derived from (seed, tensor index).
void init_params(const ParamLayout& layout, const ModelConfig& cfg, uint64_t seed, float* out);

}  // namespace onebit::model
