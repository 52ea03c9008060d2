// RMSNorm (+ fused int8 activation quantization) and its backward against reference.h, at hidden
// sizes and at head_dim (QK-norm is the same kernel with C = head_dim), odd sizes included.
// Tolerances: out is one bf16 rounding of an f32 value (2^-8 relative, with the f32 sum of squares
// adding ~1e-6); rstd is f32 against an f64 sum (1e-5 relative). The int8 path quantizes the f32
// value as the CPU does; the f32 vs f64 rstd (one f32 ulp) can move a value across a rounding
// boundary, so an element may be one code step (1/s) off, rarely (at most 0.1% of elements).
// Backward: dx is an f32 value added to bf16 dx and rounded (2^-8 of the magnitudes involved);
// dw sums N f32 products (1e-6 * N absolute).
#include <gtest/gtest.h>

#include <ostream>

#include <algorithm>

#include "cuda_test_util.h"
#include "onebit/kernels/cpu/reference.h"

namespace onebit::kernels::cuda {
namespace {

using namespace testing;

struct Shape {
  int N, C;
};
// Printed in test names (ctest -R can select a shape).
std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << "N" << s.N << "_C" << s.C; }
class RmsNormShapes : public ::testing::TestWithParam<Shape> {};
INSTANTIATE_TEST_SUITE_P(Odd, RmsNormShapes,
                         ::testing::Values(Shape{1, 64}, Shape{37, 77}, Shape{301, 768}, Shape{13, 1031},
                                           Shape{1000, 128}, Shape{29, 2816},
                                           // the wide-row backward (1024 < C <= 4096): one and two vectors a
                                           // thread, rows that do not divide into the blocks' runs
                                           Shape{3001, 2048}, Shape{33, 4096}, Shape{7, 1032},
                                           // the register-blocked backward: every vectors-per-lane count,
                                           // several rows per warp, many blocks to fold
                                           Shape{4099, 48}, Shape{999, 1024}, Shape{2047, 256}, Shape{20000, 64}));

TEST_P(RmsNormShapes, ForwardWithInt8MatchesReference) {
  ONEBIT_REQUIRE_GPU();
  const auto [N, C] = GetParam();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s << " N " << N << " C " << C);
  const float eps = 1e-6f;
  const auto x = bf16_exact(randn((size_t)N * C, s, 2.0)), w = randn(C, s + 1, 0.2, 1.0);
  Context ctx;
  DevBf16 dx(x), out(x.size()), outq(x.size());
  Dev<float> dw(C), rstd(N);
  dw.put(w);
  rmsnorm_forward(ctx, out.get(), outq.get(), rstd.get(), dx.get(), dw.get(), N, C, eps);
  std::vector<float> want(x.size()), wantq(x.size()), want_r(N);
  ref::rmsnorm_forward<float>(want.data(), wantq.data(), want_r.data(), x.data(), w.data(), N, C, eps);
  expect_close(rstd.take(), want_r, 1e-5, 0, "rstd");
  expect_close(out.take_f32(), want, kBf16Rtol, 1e-6, "rmsnorm out");
  const auto gotq = outq.take_f32();
  size_t off = 0;
  for (int n = 0; n < N; ++n) {
    float m = 0;
    for (int c = 0; c < C; ++c) m = std::max(m, std::abs(want[(size_t)n * C + c]));
    const float step = std::max(m, 1e-5f) / 127.0f;
    for (int c = 0; c < C; ++c) {
      const size_t i = (size_t)n * C + c;
      const float err = std::abs(gotq[i] - wantq[i]);
      ASSERT_LE(err, 1.01f * step + bf16_ulp(wantq[i])) << "int8 [" << n << "," << c << "]";
      off += err > bf16_ulp(wantq[i]);
    }
  }
  EXPECT_LE(off, std::max<size_t>(2, x.size() / 1000)) << "int8 codes off by one step";
}

TEST_P(RmsNormShapes, BackwardAccumulatesLikeReference) {
  ONEBIT_REQUIRE_GPU();
  const auto [N, C] = GetParam();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s << " N " << N << " C " << C);
  const auto x = bf16_exact(randn((size_t)N * C, s)), w = randn(C, s + 1, 0.2, 1.0);
  const auto g = bf16_exact(randn((size_t)N * C, s + 2)), dx0 = bf16_exact(randn((size_t)N * C, s + 3));
  const auto dw0 = randn(C, s + 4);
  std::vector<float> tmp(x.size()), r(N);
  ref::rmsnorm_forward<float>(tmp.data(), nullptr, r.data(), x.data(), w.data(), N, C, 1e-6f);
  std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), gd(g.begin(), g.end()), rd(r.begin(), r.end());
  std::vector<double> dxd((size_t)N * C, 0.0), dwd(dw0.begin(), dw0.end());
  ref::rmsnorm_backward<double>(dxd.data(), dwd.data(), gd.data(), xd.data(), wd.data(), rd.data(), N, C);
  Context ctx;
  // Both kernels for rows up to 1024 wide: the lane groups' and the block-a-row kernel of wider rows (CudaOps picks
  // by width, or $ONEBIT_CUDA_NORM_ROWS_BY_BLOCK); other shapes take one kernel either way.
  for (const bool by_block : {false, true}) {
    SCOPED_TRACE(by_block ? "block a row" : "lane groups");
    DevBf16 dx(dx0), dg(g), dxin(x);
    Dev<float> dw(C), dwt(C), drstd(N);
    dw.put(dw0);
    dwt.put(w);
    drstd.put(r);
    rmsnorm_backward(ctx, dx.get(), dw.get(), dg.get(), dxin.get(), dwt.get(), drstd.get(), N, C, by_block);
    const auto got = dx.take_f32();
    for (size_t i = 0; i < got.size(); ++i) {
      const double want = dx0[i] + dxd[i];
      ASSERT_NEAR(got[i], want, (std::abs(dx0[i]) + std::abs(dxd[i])) / 256 + 1e-5) << "dx[" << i << "]";
    }
    expect_close(dw.take(), dwd, 1e-5, 1e-6 * N, "dw");
  }
}

TEST(CudaActQuant, Int8MatchesReferenceBitwiseAndInPlace) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  const int N = 53, C = 1027;
  auto x = bf16_exact(randn((size_t)N * C, s, 3.0));
  for (int c = 0; c < C; ++c) x[5 * C + c] = 0.0f;  // an all-zero row: s = 127 / 1e-5
  Context ctx;
  DevBf16 dx(x), out(x.size());
  act_quant_int8(ctx, out.get(), dx.get(), N, C);
  act_quant_int8(ctx, dx.get(), dx.get(), N, C);
  std::vector<float> want(x.size());
  ref::act_quant_int8<float>(want.data(), x.data(), N, C);
  for (auto& v : want) v = ref::bf16_round(v);
  EXPECT_EQ(out.take_f32(), want);
  EXPECT_EQ(dx.take_f32(), want);
}

}  // namespace
}  // namespace onebit::kernels::cuda
