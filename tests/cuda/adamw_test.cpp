// Multi-tensor AdamW with global-norm clipping against the CPU optimizer (train::AdamW, CPU backend) on
// the same tensors laid out as one arena, three steps, one of them clipped. Both evaluate the same f32
// expression; the compilers may fuse different multiply-adds, so values agree to a few f32 ulp
// (relative 1e-6; absolute 1e-9 for values near zero), and the norm to f64 summation order (1e-12).
#include <gtest/gtest.h>

#include <numeric>

#include "cuda_test_util.h"
#include "onebit/train/adamw.h"

namespace onebit::kernels::cuda {
namespace {

using namespace testing;

TEST(CudaAdamW, MatchesCpuAdamWWithClipping) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  const std::vector<size_t> sizes{1, 1000, 70001, 300, (size_t{1} << 17) + 3};  // across the 64K chunking
  const size_t total = std::accumulate(sizes.begin(), sizes.end(), size_t{0});
  train::AdamWConfig cfg;
  cfg.weight_decay = 0.1f;
  std::vector<train::DecayRange> ranges;
  size_t off = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    ranges.push_back({off, sizes[i], i % 2 == 0});
    off += sizes[i];
  }
  train::AdamW cpu(total, cfg, ranges);
  auto params = randn(total, s, 0.05);
  Context ctx;
  Dev<float> p(total), g(total), m(total), v(total);
  p.put(params);
  std::vector<AdamWTensor> tensors;
  for (const auto& r : ranges)
    tensors.push_back({p.get() + r.offset, g.get() + r.offset, m.get() + r.offset, v.get() + r.offset, r.numel, r.decay});
  AdamW gpu(ctx, tensors);
  Dev<double> norm(1);
  const float lrs[] = {1e-3f, 3e-3f, 2e-3f};
  const double max_norms[] = {0.0, 1.0, 1e6};  // step 2 clips (the norm is ~sqrt(total) * 0.1)
  for (int step = 0; step < 3; ++step) {
    auto grads = randn(total, s + 1 + step, 0.1);
    g.put(grads);
    const double want_norm = train::clip_grad_norm(grads, max_norms[step]);
    cpu.step(params, grads, lrs[step]);
    AdamWStep st;
    st.lr = lrs[step];
    st.beta1 = cfg.beta1;
    st.beta2 = cfg.beta2;
    st.eps = cfg.eps;
    st.weight_decay = cfg.weight_decay;
    st.t = step + 1;
    st.max_norm = max_norms[step];
    gpu.step(ctx, st, norm.get());
    EXPECT_NEAR(norm.take()[0], want_norm, 1e-12 * want_norm) << "step " << step;
    if (step == 1) {
      ASSERT_GT(want_norm, max_norms[1]) << "the clipping step must clip";
    }
    expect_close(p.take(), params, 1e-6, 1e-9, "params");
    expect_close(m.take(), std::vector<float>(cpu.exp_avg().begin(), cpu.exp_avg().end()), 1e-6, 1e-12, "exp_avg");
    expect_close(v.take(), std::vector<float>(cpu.exp_avg_sq().begin(), cpu.exp_avg_sq().end()), 1e-6, 1e-15,
                 "exp_avg_sq");
  }
  // Gradients are read, never written: clipping is applied on the fly.
  EXPECT_EQ(g.take(), randn(total, s + 3, 0.1));
}

}  // namespace
}  // namespace onebit::kernels::cuda
