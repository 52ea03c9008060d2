// cuBLASLt matmuls against the f64 reference GEMM on bf16-exact inputs, every transpose pair, both
// output types, odd shapes. Tolerances: the products are exact in f32 and summed in f32, so the f32
// output is within ~K * 2^-24 * sum|a b| (atol 1e-5 * K is far above that and far below a wrong
// element); a bf16 output adds one rounding, 2^-9 relative (rtol 2^-8).
#include <gtest/gtest.h>

#include <ostream>

#include "cuda_test_util.h"
#include "onebit/kernels/cpu/reference.h"

namespace onebit::kernels::cuda {
namespace {

using namespace testing;

std::vector<double> ref_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const std::vector<float>& A, int lda,
                             const std::vector<float>& B, int ldb, float beta, const std::vector<float>& C) {
  std::vector<double> a(A.begin(), A.end()), b(B.begin(), B.end()), c(C.begin(), C.end());
  ref::gemm<double>(ta, tb, M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), N);
  return c;
}

class MatmulShapes : public ::testing::TestWithParam<GemmShape> {};
INSTANTIATE_TEST_SUITE_P(Odd, MatmulShapes,
                         ::testing::Values(GemmShape{3, 5, 7}, GemmShape{37, 131, 67}, GemmShape{301, 515, 259},
                                           GemmShape{64, 128, 1024}));

TEST_P(MatmulShapes, EveryTransposeAndOutputType) {
  ONEBIT_REQUIRE_GPU();
  const auto [M, N, K] = GetParam();
  Context ctx;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (int f32 = 0; f32 < 2; ++f32) {
        const uint64_t s = test_seed();
        SCOPED_TRACE(::testing::Message() << "seed " << s << " ta " << ta << " tb " << tb << " f32 out " << f32);
        const auto A = bf16_exact(randn((size_t)M * K, s)), B = bf16_exact(randn((size_t)K * N, s + 1));
        const auto C0 = bf16_exact(randn((size_t)M * N, s + 2));
        const int lda = ta ? M : K, ldb = tb ? K : N;
        const float alpha = 0.75f, beta = (ta + tb) % 2 ? 0.5f : 0.0f;  // both beta paths
        DevBf16 dA(A), dB(B);
        std::vector<float> got;
        if (f32) {
          Dev<float> dC(C0.size());
          dC.put(C0);
          matmul(ctx, ta, tb, M, N, K, alpha, dA.get(), lda, dB.get(), ldb, beta, dC.get(), N, OutType::F32);
          got = dC.take();
        } else {
          DevBf16 dC(C0);
          matmul(ctx, ta, tb, M, N, K, alpha, dA.get(), lda, dB.get(), ldb, beta, dC.get(), N, OutType::BF16);
          got = dC.take_f32();
        }
        const auto want = ref_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0);
        expect_close(got, want, f32 ? 1e-6 : kBf16Rtol, 1e-5 * K, "matmul");
      }
}

// The three products of a linear layer, dW accumulated (beta = 1) over two micro-batches.
TEST(CudaMatmul, LinearTrainingProducts) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  const int N = 77, in = 93, out = 45;
  Context ctx;
  const auto x = bf16_exact(randn((size_t)N * in, s)), W = bf16_exact(randn((size_t)out * in, s + 1));
  const auto dy = bf16_exact(randn((size_t)N * out, s + 2)), dW0 = randn((size_t)out * in, s + 3);
  DevBf16 dx_(x), dW_(W), ddy(dy), y(N * out), dx(N * in);
  Dev<float> dW(dW0.size());
  dW.put(dW0);
  linear_forward(ctx, y.get(), dx_.get(), dW_.get(), N, in, out);
  linear_backward_input(ctx, dx.get(), ddy.get(), dW_.get(), N, in, out);
  linear_backward_weight(ctx, dW.get(), ddy.get(), dx_.get(), N, in, out);
  linear_backward_weight(ctx, dW.get(), ddy.get(), dx_.get(), N, in, out);
  const auto y_want = ref_gemm(false, true, N, out, in, 1, x, in, W, in, 0, std::vector<float>((size_t)N * out));
  const auto dx_want = ref_gemm(false, false, N, in, out, 1, dy, out, W, in, 0, std::vector<float>((size_t)N * in));
  const auto dW_want = ref_gemm(true, false, out, in, N, 2, dy, out, x, in, 1, dW0);
  expect_close(y.take_f32(), y_want, kBf16Rtol, 1e-5 * in, "y = x W^T");
  expect_close(dx.take_f32(), dx_want, kBf16Rtol, 1e-5 * out, "dx = dy W");
  expect_close(dW.take(), dW_want, 1e-6, 2e-5 * N, "dW += dy^T x");
}

}  // namespace
}  // namespace onebit::kernels::cuda
