// RoPE, gated activations and the residual branch with dropout against reference.h on bf16-exact
// inputs. Tolerances: each output is one bf16 rounding (2^-8 relative) of an f32 expression whose
// own error (expf / tanhf within 2 ulp, products ~1e-7 of the terms) is far smaller; 1e-6 absolute
// covers values near zero (the residual add: 1.2e-7 of its terms, as the CPU compiler may fuse it).
// The dropout mask must be identical to kernels::dropout_factor's.
#include <gtest/gtest.h>

#include <cmath>

#include "cuda_test_util.h"
#include "onebit/kernels/cpu/reference.h"

namespace onebit::kernels::cuda {
namespace {

using namespace testing;

TEST(CudaRope, ForwardAndInverseMatchReference) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  for (const int hd : {64, 128, 6}) {
    const int B = 3, T = 37, H = 5, half = hd / 2;
    const auto x = bf16_exact(randn((size_t)B * T * H * hd, s + hd));
    std::vector<float> cs((size_t)T * half), sn((size_t)T * half);
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < half; ++i) {
        const double a = t * std::pow(10000.0, -2.0 * i / hd);
        cs[(size_t)t * half + i] = (float)std::cos(a);
        sn[(size_t)t * half + i] = (float)std::sin(a);
      }
    Context ctx;
    DevBf16 dx(x);
    Dev<float> dc(cs.size()), ds(sn.size());
    dc.put(cs);
    ds.put(sn);
    for (const bool inverse : {false, true}) {
      std::vector<float> want = x;
      ref::rope<float>(want.data(), cs.data(), sn.data(), B, T, H, hd, inverse);
      DevBf16 y(x);
      rope(ctx, y.get(), dc.get(), ds.get(), B, T, H, hd, inverse);
      const auto got = y.take_f32();
      for (size_t i = 0; i < got.size(); ++i) {
        const size_t base = i - i % hd, j = i % hd, pair = j < (size_t)half ? j + half : j - half;
        const double terms = std::abs(x[base + j]) + std::abs(x[base + pair]);
        ASSERT_NEAR(got[i], want[i], std::abs(want[i]) * kBf16Rtol + 1e-6 * terms + 1e-7)
            << "hd " << hd << " inverse " << inverse << " [" << i << "]";
      }
    }
    // Forward then inverse is the identity up to two bf16 roundings.
    DevBf16 y(x);
    rope(ctx, y.get(), dc.get(), ds.get(), B, T, H, hd, false);
    rope(ctx, y.get(), dc.get(), ds.get(), B, T, H, hd, true);
    expect_close(y.take_f32(), x, 1.0 / 64, 1e-2, "rope round trip");
  }
}

TEST(CudaGatedAct, ForwardAndBackwardMatchReference) {
  ONEBIT_REQUIRE_GPU();
  const size_t n = 100003;
  Context ctx;
  for (const GatedAct act : {GatedAct::SwiGLU, GatedAct::ReLU2, GatedAct::GELU}) {
    const uint64_t s = test_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << s << " act " << (int)act);
    const auto g = bf16_exact(randn(n, s, 3.0)), u = bf16_exact(randn(n, s + 1)), d = bf16_exact(randn(n, s + 2));
    DevBf16 dg(g), du(u), dd(d), out(n), dgate(n), dup(n);
    gated_act_forward(ctx, out.get(), dg.get(), du.get(), n, act);
    gated_act_backward(ctx, dgate.get(), dup.get(), dd.get(), dg.get(), du.get(), n, act);
    std::vector<double> gd(g.begin(), g.end()), ud(u.begin(), u.end()), ddd(d.begin(), d.end());
    std::vector<double> o(n), dgw(n), duw(n);
    ref::gated_act_forward<double>(o.data(), gd.data(), ud.data(), n, act);
    ref::gated_act_backward<double>(dgw.data(), duw.data(), ddd.data(), gd.data(), ud.data(), n, act);
    expect_close(out.take_f32(), o, kBf16Rtol, 1e-6, "gated forward");
    expect_close(dgate.take_f32(), dgw, kBf16Rtol, 1e-5, "dgate");
    expect_close(dup.take_f32(), duw, kBf16Rtol, 1e-6, "dup");
  }
}

// The fused gate/up gradient's two column blocks: gated_act_backward_rows writes, row by row, the bits
// gated_act_backward writes contiguously, and nothing else; odd widths take the scalar kernel.
TEST(CudaGatedAct, RowStridedBackwardIsTheContiguousOneInItsBlocks) {
  ONEBIT_REQUIRE_GPU();
  Context ctx;
  for (const int C : {2048, 104, 37}) {
    for (const GatedAct act : {GatedAct::SwiGLU, GatedAct::ReLU2, GatedAct::GELU}) {
      const uint64_t s = test_seed() + C;
      SCOPED_TRACE(::testing::Message() << "seed " << s << " C " << C << " act " << (int)act);
      const int N = 77, ld = 2 * C + (C % 8 == 0 ? 8 : 3);
      const size_t n = (size_t)N * C;
      const auto g = bf16_exact(randn(n, s, 3.0)), u = bf16_exact(randn(n, s + 1)), d = bf16_exact(randn(n, s + 2));
      DevBf16 dg(g), du(u), dd(d), dgate(n), dup(n), wide((size_t)N * ld);
      const std::vector<bf16> planted((size_t)N * ld, bf16{0x7fc1});
      wide.put(planted);
      gated_act_backward(ctx, dgate.get(), dup.get(), dd.get(), dg.get(), du.get(), n, act);
      gated_act_backward_rows(ctx, wide.get(), wide.get() + C, ld, dd.get(), dg.get(), du.get(), N, C, act);
      const auto wg = dgate.take(), wu = dup.take(), got = wide.take();
      size_t bad = 0;
      for (int r = 0; r < N; ++r)
        for (int c = 0; c < ld; ++c) {
          const uint16_t expect = c < C       ? wg[(size_t)r * C + c].bits
                                  : c < 2 * C ? wu[(size_t)r * C + c - C].bits
                                              : uint16_t{0x7fc1};
          bad += got[(size_t)r * ld + c].bits != expect;
        }
      EXPECT_EQ(bad, 0u) << "elements that differ from the contiguous call or lie outside the blocks";
    }
  }
}

TEST(CudaResidual, DropoutMaskIsTheSharedOneAndValuesMatch) {
  ONEBIT_REQUIRE_GPU();
  const size_t n = 200011;
  Context ctx;
  for (const float p : {0.0f, 0.2f, 0.5f}) {
    const uint64_t s = test_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << s << " p " << p);
    const auto x = bf16_exact(randn(n, s)), y = bf16_exact(randn(n, s + 1, 1.0, 3.0));  // y never 0
    const float scale = 0.7f;
    DevBf16 dx(x), dy(y), out(n), grad(n);
    residual_forward(ctx, out.get(), dx.get(), dy.get(), scale, p, s, n);
    residual_backward(ctx, grad.get(), dy.get(), scale, p, s, n);
    std::vector<float> want(n), want_grad(n);
    ref::residual_forward<float>(want.data(), x.data(), y.data(), scale, p, s, n);
    ref::residual_backward<float>(want_grad.data(), y.data(), scale, p, s, n);
    const auto got = out.take_f32(), got_grad = grad.take_f32();
    size_t dropped = 0;
    for (size_t i = 0; i < n; ++i) {
      const bool keep = p == 0.0f || dropout_factor(s, i, p) != 0.0f;
      dropped += !keep;
      ASSERT_EQ(got_grad[i] != 0.0f, keep) << "mask differs at " << i;
      if (!keep) {
        ASSERT_EQ(got[i], x[i]) << "dropped element changed x at " << i;
      }
      // One f32 rounding of the terms too: the CPU compiler may fuse x + (scale m) y, the GPU does not.
      const double terms = std::abs(x[i]) + std::abs(scale * y[i]) / (1.0 - p);
      ASSERT_NEAR(got[i], want[i], bf16_ulp(want[i]) + 1.2e-7 * terms) << "[" << i << "]";
      ASSERT_NEAR(got_grad[i], want_grad[i], bf16_ulp(want_grad[i])) << "grad [" << i << "]";
    }
    EXPECT_NEAR((double)dropped / n, p, 0.01);
  }
}

}  // namespace
}  // namespace onebit::kernels::cuda
