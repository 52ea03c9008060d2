// Fused cross-entropy against reference.h (f64) on bf16 logits, ignored targets included, and the
// chunked LM head + loss against an f64 head and loss. Tolerances: the loss is an f32 log-sum-exp
// (1e-5 relative); the gradient is one bf16 rounding of an f32 value (2^-8 relative, 1e-5 * dscale
// absolute: the f32 softmax of a near-one probability minus one). The chunked head rounds its logits to bf16 (one rounding,
// at most 2^-9 of the largest logit, moving the loss by at most that much) and its dlogits too, so
// its gradients are held to 2% of their largest magnitude: an indexing or chunking mistake is O(1).
#include <gtest/gtest.h>

#include <ostream>

#include <algorithm>
#include <numeric>

#include "cuda_test_util.h"
#include "onebit/kernels/cpu/reference.h"

namespace onebit::kernels::cuda {
namespace {

using namespace testing;

std::vector<int32_t> targets_for(int N, int V, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<int32_t> t(N);
  for (auto& x : t) x = (g() % 5 == 0) ? -1 : (int32_t)(g() % V);  // a fifth ignored
  return t;
}

struct Shape {
  int N, V;
};
// Printed in test names (ctest -R can select a shape).
std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << "N" << s.N << "_V" << s.V; }
class CrossEntropyShapes : public ::testing::TestWithParam<Shape> {};
INSTANTIATE_TEST_SUITE_P(Odd, CrossEntropyShapes,
                         ::testing::Values(Shape{1, 1}, Shape{37, 50}, Shape{131, 32003}, Shape{9, 49152}));
// Widths of the kernel that holds a row in registers (V a multiple of 8 up to 65536: 4, 8 and 16
// vectors per thread, the last vector of a thread partly past the row) and just past its limit.
INSTANTIATE_TEST_SUITE_P(RowInRegisters, CrossEntropyShapes,
                         ::testing::Values(Shape{7, 8}, Shape{11, 4104}, Shape{64, 32000}, Shape{5, 65536},
                                           Shape{3, 65544}));

TEST_P(CrossEntropyShapes, LossAndGradientMatchReference) {
  ONEBIT_REQUIRE_GPU();
  const auto [N, V] = GetParam();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s << " N " << N << " V " << V);
  const auto logits = bf16_exact(randn((size_t)N * V, s, 3.0));
  auto targets = targets_for(N, V, s + 1);
  if (N == 1) targets[0] = 0;
  const float dscale = 1.0f / 7;
  Context ctx;
  for (const bool want_grad : {false, true}) {
    DevBf16 dl(logits);
    Dev<float> losses(N), sum(1);
    Dev<int32_t> dt(N);
    dt.put(targets);
    cross_entropy(ctx, dl.get(), losses.get(), sum.get(), dt.get(), N, V, dscale, want_grad);
    std::vector<double> l(logits.begin(), logits.end()), want_losses(N);
    const double total = ref::cross_entropy<double>(l.data(), want_losses.data(), targets.data(), N, V, dscale, want_grad);
    expect_close(losses.take(), want_losses, 1e-5, 1e-5, "losses");
    EXPECT_NEAR(sum.take()[0], total, 1e-5 * std::abs(total) + 1e-4) << "loss sum";
    if (want_grad)
      expect_close(dl.take_f32(), l, kBf16Rtol, 1e-5 * dscale, "dlogits");
    else
      EXPECT_EQ(dl.take_f32(), logits) << "logits must stay when no gradient is asked for";
  }
}

TEST(CudaCrossEntropy, ChunkedLmHeadMatchesReference) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  const int N = 100, C = 72, V = 1001, chunk = 37;  // three uneven chunks
  const auto h = bf16_exact(randn((size_t)N * C, s)), W = bf16_exact(randn((size_t)V * C, s + 1, 0.2));
  const auto targets = targets_for(N, V, s + 2);
  const auto dW0 = randn((size_t)V * C, s + 3, 0.01);
  const float dscale = 1.0f / N;
  Context ctx;
  DevBf16 dh(h), dWt(W), dhid((size_t)N * C);
  Dev<float> losses(N), sum(1), dW(dW0.size());
  dW.put(dW0);
  Dev<int32_t> dt(N);
  dt.put(targets);
  lm_head_cross_entropy(ctx, losses.get(), sum.get(), dhid.get(), dW.get(), dh.get(), dWt.get(), dt.get(), N, C, V,
                        dscale, true, chunk);
  std::vector<double> hd(h.begin(), h.end()), Wd(W.begin(), W.end()), logits((size_t)N * V), want_losses(N);
  ref::gemm<double>(false, true, N, V, C, 1.0, hd.data(), C, Wd.data(), C, 0.0, logits.data(), V);
  const double max_logit = std::abs(*std::max_element(logits.begin(), logits.end(),
                                                      [](double a, double b) { return std::abs(a) < std::abs(b); }));
  const double total = ref::cross_entropy<double>(logits.data(), want_losses.data(), targets.data(), N, V, dscale, true);
  std::vector<double> want_dh((size_t)N * C), want_dW(dW0.begin(), dW0.end());
  ref::gemm<double>(false, false, N, C, V, 1.0, logits.data(), V, Wd.data(), C, 0.0, want_dh.data(), C);
  ref::gemm<double>(true, false, V, C, N, 1.0, logits.data(), V, hd.data(), C, 1.0, want_dW.data(), C);
  expect_close(losses.take(), want_losses, 0, 2 * max_logit / 512 + 1e-5, "chunked losses");
  EXPECT_NEAR(sum.take()[0], total, N * (2 * max_logit / 512 + 1e-5));
  auto max_abs = [](const std::vector<double>& v) {
    double m = 0;
    for (double x : v) m = std::max(m, std::abs(x));
    return m;
  };
  expect_close(dhid.take_f32(), want_dh, 1.0 / 128, 0.02 * max_abs(want_dh), "dhidden");
  std::vector<double> dW_delta(want_dW.size());
  for (size_t i = 0; i < dW_delta.size(); ++i) dW_delta[i] = want_dW[i] - dW0[i];
  expect_close(dW.take(), want_dW, 1e-5, 0.02 * max_abs(dW_delta), "dW");
}

}  // namespace
}  // namespace onebit::kernels::cuda
