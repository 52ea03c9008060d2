// The quantizer formulas of DESIGN.md "Numerics", on hand-picked inputs whose results are known
// exactly, for every backend: rounding ties go to even (torch.round, which BitNet's PyTorch code and
// bench/peer_torch_bitnet.py use), the 1e-5 floors, the clamp ranges and the binary sign at zero.
// The fast-vs-reference tests cannot see these choices: random inputs never hit a tie.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "onebit/kernels/kernels.h"

namespace onebit::kernels {
namespace {

template <typename T>
struct Backend {
  const char* name;
  Ops<T>& ops;
};

template <typename T>
std::vector<T> act_quant(Ops<T>& ops, const std::vector<T>& x, int N) {
  std::vector<T> out(x.size());
  ops.act_quant_int8(out.data(), x.data(), N, (int)x.size() / N);
  return out;
}

template <typename T>
void check_act_quant(Ops<T>& ops) {
  // max|x| = 127 makes s = 1 exactly, so x*s is the value being rounded.
  const std::vector<T> x = {127, 0.5, 1.5, 2.5, -0.5, -2.5, 126.5, -3.5};
  const std::vector<T> half_even = {127, 0, 2, 2, -0, -2, 126, -4};
  EXPECT_EQ(act_quant(ops, x, 1), half_even);
  // Per token: each row has its own scale (row 2's max is 254, so s = 0.5).
  const std::vector<T> two = {127, 1, 254, 3};
  const std::vector<T> q2 = act_quant(ops, two, 2);
  EXPECT_EQ(q2[0], T(127));
  EXPECT_EQ(q2[1], T(1));
  EXPECT_EQ(q2[2], T(254));
  EXPECT_EQ(q2[3], T(4));  // 3 * 0.5 = 1.5 rounds to 2, / 0.5 = 4
  // The 1e-5 floor: a row whose max is below it is scaled by 127/1e-5, not 127/max.
  const std::vector<T> tiny = {T(1e-7), T(-1e-7), 0, 0};
  const std::vector<T> qt = act_quant(ops, tiny, 1);
  const T s = T(127) / T(1e-5);
  EXPECT_EQ(qt[0], std::nearbyint(T(1e-7) * s) / s);  // round(1.27) = 1
  EXPECT_NE(qt[0], T(1e-7));
  EXPECT_EQ(qt[1], -qt[0]);
  const std::vector<T> zero(5, T(0));
  EXPECT_EQ(act_quant(ops, zero, 1), zero);  // no 0/0
}

template <typename T>
void check_weight_quant(Ops<T>& ops) {
  // Ternary with g = 1: ties to even, clamp to [-1, 1].
  const std::vector<T> w = {0.5, -0.5, 1.5, -1.5, 0.49, 0.51, -0.51, 3, -7, 0};
  const std::vector<T> expect = {0, -0, 1, -1, 0, 1, -1, 1, -1, 0};
  std::vector<T> out(w.size());
  // The CPU backends' memory is host memory, so scales and counts may live on the stack here.
  const QuantScale unit{0.0f, 1.0f};
  ops.weight_quantize(out.data(), w.data(), w.size(), WeightQuant::Ternary, &unit, 0.0f);
  EXPECT_EQ(out, expect);
  int64_t counts[3] = {0, 0, 0};
  ops.weight_code_counts(counts, w.data(), w.size(), WeightQuant::Ternary, &unit);
  EXPECT_EQ(counts[0], 3);  // -1.5, -0.51, -7
  EXPECT_EQ(counts[1], 4);  // 0.5, -0.5, 0.49, 0
  EXPECT_EQ(counts[2], 3);  // 1.5, 0.51, 3
  // Ternary scale: g = mean|W| + 1e-5 (added, not a clamp), so an all-zero tensor has g = 1e-5.
  const std::vector<T> t = {1, -2, 3, -4};
  QuantScale ts;
  ops.weight_quant_scale(&ts, t.data(), t.size(), WeightQuant::Ternary);
  EXPECT_EQ(ts.scale, (float)(2.5 + 1e-5));
  const std::vector<T> z(8, T(0));
  ops.weight_quant_scale(&ts, z.data(), z.size(), WeightQuant::Ternary);
  EXPECT_EQ(ts.scale, 1e-5f);
  // transformers' BitNet ternary scale (model_type bitnet): max(mean|W|, 1e-5), a clamp, not a sum.
  ops.ternary_scale_clamped(&ts, t.data(), t.size());
  EXPECT_EQ(ts.scale, 2.5f);
  ops.ternary_scale_clamped(&ts, z.data(), z.size());
  EXPECT_EQ(ts.scale, 1e-5f);
  const std::vector<T> tiny = {T(4e-6), T(-4e-6)};  // mean 4e-6 < 1e-5: the floor
  ops.ternary_scale_clamped(&ts, tiny.data(), tiny.size());
  EXPECT_EQ(ts.scale, 1e-5f);
  // Binary: a = mean(W), b = mean|W - a|, effective sign(W - a) * b, with W == a taken as +1.
  const std::vector<T> bw = {1, 2, 3, 6};
  QuantScale bs;
  ops.weight_quant_scale(&bs, bw.data(), bw.size(), WeightQuant::Binary);
  EXPECT_EQ(bs.center, 3.0f);
  EXPECT_EQ(bs.scale, 1.5f);
  std::vector<T> bo(bw.size());
  ops.weight_quantize(bo.data(), bw.data(), bw.size(), WeightQuant::Binary, &bs, 0.0f);
  EXPECT_EQ(bo, (std::vector<T>{-1.5, -1.5, 1.5, 1.5}));
  // Int8 weights: scale = max|W|, codes round(W * 127 / max) clamped to [-127, 127].
  const std::vector<T> iw = {127, 0.5, -1.5, -127};
  QuantScale is;
  ops.weight_quant_scale(&is, iw.data(), iw.size(), WeightQuant::Int8);
  EXPECT_EQ(is.scale, 127.0f);
  std::vector<T> io(iw.size());
  ops.weight_quantize(io.data(), iw.data(), iw.size(), WeightQuant::Int8, &is, 0.0f);
  EXPECT_EQ(io, (std::vector<T>{127, 0, -2, -127}));
  // BF16: round to nearest even on the dropped 16 bits.
  const std::vector<T> hw = {T(1.0 + 1.0 / 256), T(1.0 + 3.0 / 256), T(1.0 + 1.0 / 128)};
  std::vector<T> ho(hw.size());
  const QuantScale none{};
  ops.weight_quantize(ho.data(), hw.data(), hw.size(), WeightQuant::BF16, &none, 0.0f);
  EXPECT_EQ(ho, (std::vector<T>{1.0, T(1.0 + 1.0 / 64), T(1.0 + 1.0 / 128)}));
}

template <typename T>
void check_rmsnorm(Ops<T>& ops) {
  // out = x / sqrt(mean(x^2) + eps) * w; mean(x^2) = 12.5, eps = 0.5 gives rstd = 1/sqrt(13).
  const std::vector<T> x = {3, 4}, w = {1, 2};
  std::vector<T> out(2), q(2), rstd(1);
  ops.rmsnorm_forward(out.data(), q.data(), rstd.data(), x.data(), w.data(), 1, 2, 0.5f);
  const double r = 1.0 / std::sqrt(13.0);
  EXPECT_NEAR(rstd[0], r, 1e-7);
  EXPECT_NEAR(out[0], 3 * r, 1e-6);
  EXPECT_NEAR(out[1], 8 * r, 1e-6);
  // The fused quantizer is the per-token int8 quantizer applied to the normalized row.
  EXPECT_EQ(q, act_quant(ops, out, 1));
}

TEST(Numerics, FastFloat) {
  check_act_quant(cpu_ops());
  check_weight_quant(cpu_ops());
  check_rmsnorm(cpu_ops());
}

TEST(Numerics, ReferenceFloat) {
  check_act_quant(reference_ops<float>());
  check_weight_quant(reference_ops<float>());
  check_rmsnorm(reference_ops<float>());
}

TEST(Numerics, ReferenceDouble) {
  check_act_quant(reference_ops<double>());
  check_weight_quant(reference_ops<double>());
  check_rmsnorm(reference_ops<double>());
}

}  // namespace
}  // namespace onebit::kernels
