#include "onebit/model/model_size.h"

#include <cmath>

namespace onebit::model {

namespace {
bool quantized(Precision p) { return p == Precision::Ternary || p == Precision::Binary || p == Precision::Int8; }
}  // namespace

double ModelSize::bits_per_quantized_weight() const {
  double bits = 0;
  for (const auto& [p, t] : by_precision)
    if (quantized(p)) bits += static_cast<double>(t.params) * packed_bits(p);
  return quantized_params ? bits / static_cast<double>(quantized_params) : 0;
}

ModelSize model_size(const std::vector<ParamInfo>& params) {
  ModelSize s;
  for (const auto& t : params) {
    const uint64_t n = t.numel;
    s.total_params += n;
    auto& bp = s.by_precision[t.precision];
    bp.params += n;
    bp.tensors += 1;
    const bool q = quantized(t.precision);
    (q ? s.quantized_params : s.high_precision_params) += n;
    const double scale_bytes = q ? 4.0 : 0.0;  // one f32 scale per tensor
    const double bits = packed_bits(t.precision);
    const double ideal_bits = t.precision == Precision::Ternary ? std::log2(3.0) : bits;
    s.packed_bytes += static_cast<double>(n) * bits / 8 + scale_bytes;
    s.ideal_bytes += static_cast<double>(n) * ideal_bits / 8 + scale_bytes;
    s.f16_bytes += static_cast<double>(n) * 2;
    s.f32_bytes += static_cast<double>(n) * 4;
  }
  return s;
}

}  // namespace onebit::model
