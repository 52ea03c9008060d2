// The exact int8 x ternary forward (Ops::pack_ternary / ternary_linear_forward) against the integer
// reference on fresh random inputs, at sizes off every tile edge (8 rows, 32 columns, 4 k, 64-row blocks).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "kernel_test_util.h"
#include "test_seed.h"
#include "onebit/kernels/cpu/ternary_gemm.h"
#include "onebit/kernels/kernels.h"

namespace onebit::kernels {
namespace {

using testing::randn;
using Vec = std::vector<float>;

uint64_t seed() {  // fresh inputs every run; ONEBIT_TEST_SEED replays, the seed is printed on failure
  static uint64_t s = onebit::test::test_seed();
  return ++s;
}

struct Case {
  int N, out, in;
};

// Checks one product: y must be float(Σ q·t) * (m/127 * g) up to the one rounding of that product and
// of the scale, where q are the int8 codes act_quant_int8 gave x and m is x's row max. An integer sum off
// by one would miss by >= 1/(127 * in) relative, far outside this tolerance (and a true 0 must be 0).
void check(const Case& c, uint64_t s, Ops<float>& ops) {
  SCOPED_TRACE(::testing::Message() << "seed " << s << " N " << c.N << " out " << c.out << " in " << c.in);
  Vec x = randn<float>((size_t)c.N * c.in, s, 1.5);
  if (c.N > 2) std::fill(x.begin() + c.in, x.begin() + 2 * c.in, 0.0f);  // an all-zero row
  Vec w = randn<float>((size_t)c.out * c.in, s + 1, 0.02);
  QuantScale qs;
  ops.weight_quant_scale(&qs, w.data(), w.size(), WeightQuant::Ternary);
  Vec weff(w.size()), xq(x.size()), y((size_t)c.N * c.out, NAN);
  ops.weight_quantize(weff.data(), w.data(), w.size(), WeightQuant::Ternary, &qs, 0.0f);
  ops.act_quant_int8(xq.data(), x.data(), c.N, c.in);
  std::unique_ptr<PackedTernary> packed;
  ASSERT_TRUE(ops.pack_ternary(packed, weff.data(), c.out, c.in, &qs));
  ops.ternary_linear_forward(y.data(), xq.data(), c.N, *packed);
  for (int n = 0; n < c.N; ++n) {
    const float* xr = x.data() + (size_t)n * c.in;
    float m = 0.0f;
    for (int k = 0; k < c.in; ++k) m = std::max(m, std::fabs(xr[k]));
    const float sc = 127.0f / std::max(m, 1e-5f);
    for (int j = 0; j < c.out; ++j) {
      int64_t acc = 0;
      for (int k = 0; k < c.in; ++k) {
        const int64_t q = (int64_t)std::clamp(std::nearbyint(xr[k] * sc), -128.0f, 127.0f);
        const float wv = w[(size_t)j * c.in + k] / qs.scale;
        const int64_t t = (int64_t)std::clamp(std::nearbyint(wv), -1.0f, 1.0f);
        acc += q * t;
      }
      const double want = (double)acc * (m / 127.0) * qs.scale;
      const double got = y[(size_t)n * c.out + j];
      ASSERT_NEAR(got, want, 4e-7 * std::abs(want)) << "y[" << n << "," << j << "], Σq·t = " << acc;
    }
  }
}

TEST(TernaryGemm, MatchesIntegerReferenceAtOddSizes) {
  if (!cpu::ternary_gemm_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU (the model uses gemm there)";
  for (const Case& c : {Case{1, 1, 1}, Case{3, 33, 5}, Case{9, 31, 67}, Case{70, 65, 130}, Case{131, 96, 259}})
    check(c, seed(), cpu_ops());
}

TEST(TernaryGemm, ModelShapesOnAllThreadCounts) {
  if (!cpu::ternary_gemm_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU (the model uses gemm there)";
  for (int threads : {1, 2, 3}) {
    cpu_ops().set_num_threads(threads);
    check({197, 140, 1408}, seed(), cpu_ops());
    check({130, 1408, 512}, seed(), cpu_ops());
  }
  cpu_ops().set_num_threads(2);
}

// A pack is reused across optimizer steps: repacking new weights of another shape into the same handle
// must give the new product.
TEST(TernaryGemm, RepackReusesTheHandle) {
  if (!cpu::ternary_gemm_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU (the model uses gemm there)";
  Ops<float>& ops = cpu_ops();
  std::unique_ptr<PackedTernary> packed;
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  for (const Case& c : {Case{5, 40, 24}, Case{5, 7, 9}}) {
    Vec weff(c.out * c.in), xq(c.N * c.in), y1(c.N * c.out), y2(c.N * c.out);
    Vec w = randn<float>(weff.size(), s + c.out), x = randn<float>(xq.size(), s + c.in);
    QuantScale qs;
    ops.weight_quant_scale(&qs, w.data(), w.size(), WeightQuant::Ternary);
    ops.weight_quantize(weff.data(), w.data(), w.size(), WeightQuant::Ternary, &qs, 0.0f);
    ops.act_quant_int8(xq.data(), x.data(), c.N, c.in);
    ASSERT_TRUE(ops.pack_ternary(packed, weff.data(), c.out, c.in, &qs));
    ops.ternary_linear_forward(y1.data(), xq.data(), c.N, *packed);
    reference_ops<float>().gemm(false, true, c.N, c.out, c.in, 1.0f, xq.data(), c.in, weff.data(), c.in, 0.0f,
                                y2.data(), c.out);
    for (size_t i = 0; i < y1.size(); ++i) ASSERT_NEAR(y1[i], y2[i], 1e-5 * (1 + std::abs(y2[i]))) << i;
  }
}

// Backends without an integer path say so and leave the handle alone (callers fall back to gemm).
TEST(TernaryGemm, ReferenceHasNoIntegerPath) {
  std::unique_ptr<PackedTernary> packed;
  const float w[4] = {0.1f, -0.1f, 0.0f, 0.1f};
  const QuantScale g{0.0f, 0.1f};
  EXPECT_FALSE(reference_ops<float>().pack_ternary(packed, w, 2, 2, &g));
  EXPECT_EQ(packed, nullptr);
}

// Past kTernaryMaxIn inputs the integer sum could exceed float's exact range: the backend declines.
TEST(TernaryGemm, TooWideInputKeepsTheF32Gemm) {
  std::unique_ptr<PackedTernary> packed;
  const int in = cpu::kTernaryMaxIn + 1;
  Vec w(in, 0.1f);
  const QuantScale g{0.0f, 0.1f};
  EXPECT_FALSE(cpu_ops().pack_ternary(packed, w.data(), 1, in, &g));
  EXPECT_EQ(packed, nullptr);
}

}  // namespace
}  // namespace onebit::kernels
