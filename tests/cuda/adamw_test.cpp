// The trainer's optimizer on the GPU: train::AdamW over kernels::cuda_ops() (CudaOps' grad_norm_sq,
// clip_factor and adamw_step over one flat arena, the moments in device memory) against the same
// optimizer on the fast CPU backend, on fresh random inputs: three clip_and_step calls (the second one
// clips), ranges with and without weight decay, for the whole arena and for a ZeRO-1 shard of it.
// Tolerances: the norm is an f64 sum in another order (relative 1e-12). The update is the CPU's formula
// in correctly rounded f32 operations, where the CPU may contract to FMA: relative 1e-5, with absolute
// floors of a few ulps where values cancel or sit near zero (params 1e-7, m 2e-8, v 1e-12), as
// cuda_ops_test's single step; the differences of three steps add up, they do not grow.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>

#include "cuda_test_util.h"
#include "onebit/core/rng.h"
#include "onebit/kernels/backend.h"
#include "onebit/train/adamw.h"

namespace onebit::kernels::cuda {
namespace {

using namespace testing;

std::vector<float> download_all(const DeviceBuffer<float>& b) {
  std::vector<float> h(b.size());
  b.download(h.data(), h.size());
  return h;
}

TEST(CudaAdamW, TrainerOptimizerOnCudaOpsMatchesTheCpuBackend) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  auto& gpu_ops = kernels::cuda_ops();
  const std::vector<size_t> sizes{1, 1000, 70001, 300, (size_t{1} << 17) + 3};
  const size_t total = std::accumulate(sizes.begin(), sizes.end(), size_t{0});
  train::AdamWConfig cfg;
  cfg.weight_decay = 0.1f;
  std::vector<train::DecayRange> ranges;
  size_t off = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    ranges.push_back({off, sizes[i], i % 2 == 0});
    off += sizes[i];
  }
  struct Shard {
    size_t offset, count;
  };
  // The whole arena, and a shard that cuts ranges on both ends.
  // 501: the shard's parameters start 4 bytes past a 16-byte boundary while its moments start on one.
  for (const Shard shard : {Shard{0, total}, Shard{500, 70001 + 300 + 700}, Shard{501, 70001 + 300}}) {
    SCOPED_TRACE(::testing::Message() << "shard [" << shard.offset << ", " << shard.offset + shard.count << ")");
    train::AdamW cpu(total, cfg, ranges, kernels::cpu_ops(), shard.offset, shard.count);
    train::AdamW gpu(total, cfg, ranges, gpu_ops, shard.offset, shard.count);
    const auto initial = randn(total, s, 0.05);
    auto params = initial;
    DeviceBuffer<float> dp(gpu_ops, total), dg(gpu_ops, total);
    dp.upload(params.data(), total);
    const float lrs[] = {1e-3f, 3e-3f, 2e-3f};
    const double max_norms[] = {0.0, 1.0, 1e6};  // step 2 clips (the norm is ~sqrt(total) * 0.1)
    for (int step = 0; step < 3; ++step) {
      SCOPED_TRACE(::testing::Message() << "step " << step);
      const auto grads = randn(total, s + 1 + step, 0.1);
      dg.upload(grads.data(), total);
      cpu.clip_and_step(params.data(), grads.data(), lrs[step], max_norms[step]);
      gpu.clip_and_step(dp.get(), dg.get(), lrs[step], max_norms[step]);
      const double want_norm = cpu.read_grad_norm();
      EXPECT_NEAR(gpu.read_grad_norm(), want_norm, 1e-12 * want_norm);
      if (step == 1) {
        ASSERT_GT(want_norm, max_norms[1]) << "the clipping step must clip";
      }
      const auto got = download_all(dp);
      expect_close(got, params, 1e-5, 1e-7, "params");
      std::vector<float> cm, cv, gm, gv;
      cpu.download_state(cm, cv);
      gpu.download_state(gm, gv);
      ASSERT_EQ(gm.size(), shard.count);
      expect_close(gm, cm, 1e-5, 2e-8, "exp_avg");
      expect_close(gv, cv, 1e-5, 1e-12, "exp_avg_sq");
      // Outside the shard nothing moves.
      size_t moved = 0;
      for (size_t i = 0; i < total; ++i)
        if ((i < shard.offset || i >= shard.offset + shard.count) && got[i] != initial[i]) ++moved;
      EXPECT_EQ(moved, 0u) << "parameters outside the shard changed";
    }
    EXPECT_EQ(gpu.steps_taken(), 3);
    // Gradients are read, never written: clipping is applied on the fly.
    EXPECT_EQ(download_all(dg), randn(total, s + 3, 0.1));
  }
}

// Many ranges, as a model's arena has them (a launch takes up to 96 spans): 250 ranges of 1 to 5000 values,
// most starting on a 16-value boundary after a gap that belongs to no range (as param_layout pads tensors),
// every seventh right after its neighbour: merged into its span where the decay matches, else a span of its own
// that starts misaligned unless the neighbour's size is a multiple of 4 (element by element). Against the CPU
// backend, and the gaps keep their values. Also the gradient norm from a misaligned start (its scalar path).
TEST(CudaAdamW, ManyRangesWithGapsMatchTheCpuBackend) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  auto& gpu_ops = kernels::cuda_ops();
  Rng rng(s);
  std::vector<train::DecayRange> ranges;
  size_t end = 0;
  for (int i = 0; i < 250; ++i) {
    const size_t start = i % 7 == 6 ? end : (end + 15) / 16 * 16 + 16 * rng.uniform_int(2);
    const size_t n = 1 + rng.uniform_int(5000);
    ranges.push_back({start, n, i % 3 != 0});
    end = start + n;
  }
  const size_t total = end + 5;
  std::vector<char> in_range(total, 0);
  for (const auto& r : ranges) std::fill(in_range.begin() + r.offset, in_range.begin() + r.offset + r.numel, 1);
  train::AdamWConfig cfg;
  cfg.weight_decay = 0.1f;
  train::AdamW cpu(total, cfg, ranges, kernels::cpu_ops());
  train::AdamW gpu(total, cfg, ranges, gpu_ops);
  const auto initial = randn(total, s + 1, 0.05);
  auto params = initial;
  DeviceBuffer<float> dp(gpu_ops, total), dg(gpu_ops, total);
  dp.upload(params.data(), total);
  for (int step = 0; step < 2; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    const auto grads = randn(total, s + 2 + step, 0.1);
    dg.upload(grads.data(), total);
    cpu.clip_and_step(params.data(), grads.data(), 2e-3f, 0.0);
    gpu.clip_and_step(dp.get(), dg.get(), 2e-3f, 0.0);
    const auto got = download_all(dp);
    expect_close(got, params, 1e-5, 1e-7, "params");
    std::vector<float> cm, cv, gm, gv;
    cpu.download_state(cm, cv);
    gpu.download_state(gm, gv);
    expect_close(gm, cm, 1e-5, 2e-8, "exp_avg");
    expect_close(gv, cv, 1e-5, 1e-12, "exp_avg_sq");
    size_t moved = 0, updated = 0;
    for (size_t i = 0; i < total; ++i) {
      moved += !in_range[i] && got[i] != initial[i];
      updated += in_range[i] && got[i] != initial[i];
    }
    EXPECT_EQ(moved, 0u) << "values in the gaps between ranges changed";
    EXPECT_GT(updated, total / 2) << "the ranges were updated";
  }
  const auto g = randn(total, s + 9, 0.1);
  dg.upload(g.data(), total);
  DeviceBuffer<double> norm_sq(gpu_ops, 1);
  gpu_ops.grad_norm_sq(norm_sq.get(), dg.get() + 1, total - 1);
  double got = 0;
  norm_sq.download(&got, 1);
  const double want = train::global_grad_norm(std::span<const float>(g.data() + 1, total - 1));
  EXPECT_NEAR(std::sqrt(got), want, 1e-12 * want) << "gradient norm from a misaligned start";
}

}  // namespace
}  // namespace onebit::kernels::cuda
