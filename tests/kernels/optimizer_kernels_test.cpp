// The optimizer kernels (grad_norm_sq, clip_factor, adamw_step) of the fast CPU backend against the
// reference on fresh random inputs, over arena ranges that cross the fast kernels' block and chunk
// sizes, with a gap no range covers; and the clip factor's cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernel_test_util.h"
#include "onebit/kernels/kernels.h"
#include "test_seed.h"

namespace onebit::kernels {
namespace {

using testing::randn;
using Vec = std::vector<float>;

void expect_close(const Vec& a, const Vec& b, double rtol, double atol, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(a[i], b[i], atol + rtol * std::abs(b[i])) << what << "[" << i << "]";
}

// The CPU backends' memory is host memory, so vectors and stack scalars serve as backend buffers.
TEST(OptimizerKernels, FastMatchesReferenceOverRanges) {
  const uint64_t s = onebit::test::test_seed();
  // [0, 70001) decayed, [70001, 70301) not, a gap of 17, then (1 << 15) + 3 decayed, then one value.
  const std::vector<AdamWRange> ranges = {
      {0, 70001, true}, {70001, 300, false}, {70318, (1u << 15) + 3, true}, {70318 + (1u << 15) + 3, 1, false}};
  const size_t total = ranges.back().offset + 1, gap = 70301;
  Vec p = randn<float>(total, s, 0.05);
  Vec m = randn<float>(total, s + 1, 0.01), v = randn<float>(total, s + 2, 0.001);
  for (float& x : v) x = x * x;
  Vec pf = p, mf = m, vf = v, pr = p, mr = m, vr = v;
  Ops<float>& fast = cpu_ops();
  Ops<float>& ref = reference_ops<float>();
  const double max_norms[] = {0.0, 1.0, 1e9};  // off, clipping (the norm is ~sqrt(total) * 0.1), under
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE(step);
    const Vec g = randn<float>(total, s + 10 + step, 0.1);
    const Vec g_before = g, p_prev = pr;
    pf = pr, mf = mr, vf = vr;  // each step from the same state: rounding differences do not accumulate
    double nf = 0, nr = 0;
    fast.grad_norm_sq(&nf, g.data(), total);
    ref.grad_norm_sq(&nr, g.data(), total);
    EXPECT_NEAR(nf, nr, 1e-12 * nr);
    float cf = 0, cr = 0;
    fast.clip_factor(&cf, &nf, max_norms[step]);
    ref.clip_factor(&cr, &nr, max_norms[step]);
    EXPECT_NEAR(cf, cr, 1e-6 * cr);
    if (step == 1) {
      EXPECT_LT(cf, 1.0f) << "the clipped step does not clip";
    } else {
      EXPECT_EQ(cf, 1.0f);
    }
    AdamWHyper h;
    h.lr = 1e-3f * (step + 1);
    h.bias1 = 1.0f - std::pow(h.beta1, step + 1);
    h.bias2 = 1.0f - std::pow(h.beta2, step + 1);
    fast.adamw_step(pf.data(), g.data(), mf.data(), vf.data(), ranges.data(), ranges.size(), h, &cf);
    ref.adamw_step(pr.data(), g.data(), mr.data(), vr.data(), ranges.data(), ranges.size(), h, &cr);
    ASSERT_EQ(std::memcmp(g.data(), g_before.data(), total * sizeof(float)), 0) << "gradients were modified";
    expect_close(mf, mr, 1e-6, 1e-12, "m");
    expect_close(vf, vr, 1e-6, 1e-15, "v");
    // The two evaluate the bias corrections in different orders (sqrt(v)/sqrt(bias2) vs sqrt(v/bias2)):
    // a few f32 ulp of the update, where p itself may be near 0.
    for (size_t i = 0; i < total; ++i)
      ASSERT_NEAR(pf[i], pr[i], 1e-6 * std::abs(pr[i]) + 1e-6 * std::abs(pr[i] - p_prev[i]))
          << "params[" << i << "] update " << pr[i] - p_prev[i] << " m " << mr[i] << " v " << vr[i] << " g " << g[i];
  }
  for (size_t i = gap; i < gap + 17; ++i) {
    ASSERT_EQ(pr[i], p[i]);
    ASSERT_EQ(pf[i], p[i]) << "outside every range: " << i;
    ASSERT_EQ(mf[i], m[i]) << i;
    ASSERT_EQ(vr[i], v[i]) << i;
  }
  EXPECT_NE(pf, p);
}

// torch's clip_grad_norm_ factor max_norm / (norm + 1e-6), and exactly 1 whenever nothing is clipped
// (so that multiplying the gradients by it is the identity).
template <typename T>
void check_clip_factor(Ops<T>& ops) {
  auto factor = [&](double norm_sq, double max_norm) {
    T f = T(-1);
    ops.clip_factor(&f, &norm_sq, max_norm);
    return f;
  };
  EXPECT_EQ(factor(16.0, 0.0), T(1));   // clipping off
  EXPECT_EQ(factor(16.0, -1.0), T(1));  // clipping off
  EXPECT_EQ(factor(16.0, 4.0), T(1));   // at the limit
  EXPECT_EQ(factor(16.0, 5.0), T(1));   // under it
  EXPECT_EQ(factor(16.0, 2.0), T(2.0 / (4.0 + 1e-6)));
  EXPECT_EQ(factor(std::numeric_limits<double>::infinity(), 1.0), T(1));  // an overflow is not clipped
  EXPECT_EQ(factor(std::numeric_limits<double>::quiet_NaN(), 1.0), T(1));
}

TEST(OptimizerKernels, ClipFactorCases) {
  check_clip_factor(cpu_ops());
  check_clip_factor(reference_ops<float>());
  check_clip_factor(reference_ops<double>());
}

// The reference in double is the formula as written (torch.optim.AdamW); one step by hand.
TEST(OptimizerKernels, ReferenceIsTheAdamWFormula) {
  double p[2] = {0.5, -0.25}, m[2] = {0.1, 0.0}, v[2] = {0.01, 0.0};
  const double g[2] = {0.2, -0.4}, clip = 0.5;
  const AdamWRange ranges[] = {{0, 1, true}, {1, 1, false}};
  AdamWHyper h;
  h.lr = 0.01f, h.beta1 = 0.9f, h.beta2 = 0.95f, h.eps = 1e-8f, h.weight_decay = 0.1f;
  h.bias1 = 0.19f, h.bias2 = 0.0975f;  // t = 2
  reference_ops<double>().adamw_step(p, g, m, v, ranges, 2, h, &clip);
  for (int i = 0; i < 2; ++i) {
    const double b1 = h.beta1, b2 = h.beta2, lr = h.lr;
    const double gi = (i == 0 ? 0.2 : -0.4) * clip;
    const double mi = b1 * (i == 0 ? 0.1 : 0.0) + (1 - b1) * gi;
    const double vi = b2 * (i == 0 ? 0.01 : 0.0) + (1 - b2) * gi * gi;
    double pi = i == 0 ? 0.5 * (1 - lr * (double)h.weight_decay) : -0.25;
    pi -= lr * (mi / (double)h.bias1) / (std::sqrt(vi / (double)h.bias2) + (double)h.eps);
    EXPECT_NEAR(m[i], mi, 1e-15);
    EXPECT_NEAR(v[i], vi, 1e-15);
    EXPECT_NEAR(p[i], pi, 1e-15);
  }
}

}  // namespace
}  // namespace onebit::kernels
