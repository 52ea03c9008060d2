// The optimizer kernels of the fast CPU backend: the global gradient norm, the clip factor and AdamW
// (the code train/adamw.cpp ran on host arrays before the optimizer moved behind Ops; same arithmetic).
#include <algorithm>
#include <cmath>
#include <vector>

#include "onebit/kernels/cpu/fast.h"
#include "onebit/kernels/cpu/thread_pool.h"

namespace onebit::kernels::cpu {

double grad_norm_sq(const float* g, size_t n) {
  // Fixed-size blocks summed in order: the same value for any thread count.
  constexpr size_t kBlock = 1 << 14;
  const int64_t nblocks = static_cast<int64_t>((n + kBlock - 1) / kBlock);
  std::vector<double> partial(static_cast<size_t>(nblocks), 0.0);
  parallel_for(nblocks, [&](int64_t b) {
    size_t lo = static_cast<size_t>(b) * kBlock, hi = std::min(n, lo + kBlock);
    // Vector lanes summed in the vectorizer's fixed order (the loop was scalar, 1.3% of a 25m step): the
    // same value for any thread count still, not the same bits as a left-to-right sum.
    const float* const gp = g;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (size_t i = lo; i < hi; ++i) s += static_cast<double>(gp[i]) * gp[i];
    partial[static_cast<size_t>(b)] = s;
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

float clip_factor(double norm_sq, double max_norm) {
  const double norm = std::sqrt(norm_sq);
  if (max_norm > 0.0 && norm > max_norm && std::isfinite(norm)) return static_cast<float>(max_norm / (norm + 1e-6));
  return 1.0f;
}

void adamw_step(float* p, const float* g, float* m, float* v, const AdamWRange* ranges, size_t num_ranges,
                const AdamWHyper& h, const float* clip) {
  const float b1 = h.beta1, b2 = h.beta2, eps = h.eps;
  const float step_size = h.lr / h.bias1;
  const float inv_sqrt_bc2 = 1.0f / std::sqrt(h.bias2);
  // Multiplying by exactly 1 when nothing is clipped leaves every gradient bitwise as it is.
  const float c = clip ? *clip : 1.0f;
  for (size_t ri = 0; ri < num_ranges; ++ri) {
    const AdamWRange& r = ranges[ri];
    const float decay = r.decay ? 1.0f - h.lr * h.weight_decay : 1.0f;
    // The kernels' pool rather than OpenMP: its fork/join barrier stalls on a busy machine.
    parallel_ranges(static_cast<int64_t>(r.numel), 1 << 15, [&](int64_t lo, int64_t hi) {
      const size_t b = r.offset + static_cast<size_t>(lo), e = r.offset + static_cast<size_t>(hi);
#pragma omp simd
      for (size_t i = b; i < e; ++i) {
        float gi = g[i] * c;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = std::sqrt(vi) * inv_sqrt_bc2 + eps;
        p[i] = p[i] * decay - step_size * mi / denom;
      }
    });
  }
}

}  // namespace onebit::kernels::cpu
