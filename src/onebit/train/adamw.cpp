#include "onebit/train/adamw.h"

#include <cmath>

#include "onebit/core/error.h"
#include "onebit/kernels/cpu/thread_pool.h"

namespace onebit::train {

AdamW::AdamW(size_t num_params, AdamWConfig cfg, std::vector<DecayRange> ranges)
    : cfg_(cfg), ranges_(std::move(ranges)), m_(num_params, 0.0f), v_(num_params, 0.0f) {
  for (const auto& r : ranges_)
    OB_CHECK(r.offset + r.numel <= num_params, "AdamW: parameter range [", r.offset, ", ", r.offset + r.numel,
             ") is outside the arena of ", num_params);
}

void AdamW::step(std::span<float> params, std::span<const float> grads, float lr) {
  OB_CHECK(params.size() == m_.size() && grads.size() == m_.size(), "AdamW: arena size changed");
  ++t_;
  const float b1 = cfg_.beta1, b2 = cfg_.beta2, eps = cfg_.eps;
  const float bc1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(b1), static_cast<double>(t_)));
  const float bc2 = 1.0f - static_cast<float>(std::pow(static_cast<double>(b2), static_cast<double>(t_)));
  const float step_size = lr / bc1;
  const float inv_sqrt_bc2 = 1.0f / std::sqrt(bc2);
  float* p = params.data();
  const float* g = grads.data();
  float* m = m_.data();
  float* v = v_.data();
  for (const auto& r : ranges_) {
    const float decay = r.decay ? 1.0f - lr * cfg_.weight_decay : 1.0f;
    // The kernels' pool rather than OpenMP: its fork/join barrier stalls on a busy machine.
    kernels::cpu::parallel_ranges(static_cast<int64_t>(r.numel), 1 << 15, [&](int64_t lo, int64_t hi) {
      const size_t b = r.offset + static_cast<size_t>(lo), e = r.offset + static_cast<size_t>(hi);
#pragma omp simd
      for (size_t i = b; i < e; ++i) {
        float gi = g[i];
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

double global_grad_norm(std::span<const float> grads) {
  constexpr size_t kBlock = 1 << 14;
  const size_t n = grads.size();
  const int64_t nblocks = static_cast<int64_t>((n + kBlock - 1) / kBlock);
  std::vector<double> partial(static_cast<size_t>(nblocks), 0.0);
  const float* g = grads.data();
  kernels::cpu::parallel_for(nblocks, [&](int64_t b) {
    size_t lo = static_cast<size_t>(b) * kBlock, hi = std::min(n, lo + kBlock);
    double s = 0.0;
    for (size_t i = lo; i < hi; ++i) s += static_cast<double>(g[i]) * g[i];
    partial[static_cast<size_t>(b)] = s;
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return std::sqrt(total);
}

double clip_grad_norm(std::span<float> grads, double max_norm) {
  double norm = global_grad_norm(grads);
  if (max_norm > 0.0 && norm > max_norm && std::isfinite(norm)) {
    const float scale = static_cast<float>(max_norm / (norm + 1e-6));
    float* g = grads.data();
    kernels::cpu::parallel_ranges(static_cast<int64_t>(grads.size()), 1 << 15, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) g[i] *= scale;
    });
  }
  return norm;
}

}  // namespace onebit::train
