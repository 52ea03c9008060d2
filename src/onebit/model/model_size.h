#pragma once
// Parameter counts and sizes for `onebit info`: per precision, bits per weight, and bytes on disk
// packed (ternary 2 bits/weight as packed for deployment, log2(3) = 1.58 ideal; binary 1; int8 8;
// plus one f32 scale per quantized tensor) versus f16 and the f32 master weights.
#include <cstdint>
#include <map>
#include <vector>

#include "onebit/model/transformer.h"

namespace onebit::model {

struct PrecisionTotals {
  uint64_t params = 0;
  uint64_t tensors = 0;
};

struct ModelSize {
  uint64_t total_params = 0;
  uint64_t quantized_params = 0;       // ternary, binary, int8 linears
  uint64_t high_precision_params = 0;  // embeddings, head, norms, f32/bf16 linears
  std::map<Precision, PrecisionTotals> by_precision;
  double packed_bytes = 0;  // deployment packing (ternary at 2 bits)
  double ideal_bytes = 0;   // ternary at log2(3) bits
  double f16_bytes = 0;
  double f32_bytes = 0;
  double bits_per_weight() const { return total_params ? packed_bytes * 8 / static_cast<double>(total_params) : 0; }
  double bits_per_quantized_weight() const;
};

// `params` as in Transformer::params_info() or model::build_param_layout(cfg).info (no allocation).
ModelSize model_size(const std::vector<ParamInfo>& params);

}  // namespace onebit::model
