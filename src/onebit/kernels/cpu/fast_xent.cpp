// Fused softmax cross-entropy: one row stays in cache while its max, log-sum-exp, loss and gradient
// are computed; the gradient overwrites the logits in place.
#include <algorithm>
#include <cmath>

#include "onebit/kernels/cpu/fast.h"
#include "onebit/kernels/cpu/thread_pool.h"
#include "onebit/kernels/cpu/vec_math.h"

namespace onebit::kernels::cpu {

double cross_entropy(float* logits, float* losses, const int32_t* targets, int N, int V, float dscale, bool want_grad) {
  parallel_ranges(N, std::max<int64_t>(1, kMinChunk / V), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      float* l = logits + (size_t)n * V;
      const int tgt = targets[n];
      if (tgt < 0) {
        losses[n] = 0.0f;
        if (want_grad) std::fill(l, l + V, 0.0f);
        continue;
      }
      const float mx = vmax(l, (size_t)V, -INFINITY);
      const float target_logit = l[tgt];
      float sum = 0.0f;
      if (want_grad) {  // keep exp(l - max) in place: one exp per logit
#pragma omp simd reduction(+ : sum)
        for (int v = 0; v < V; ++v) {
          const float e = vexp(l[v] - mx);
          l[v] = e;
          sum += e;
        }
        const float k = dscale / sum;
#pragma omp simd
        for (int v = 0; v < V; ++v) l[v] *= k;
        l[tgt] -= dscale;
      } else {
#pragma omp simd reduction(+ : sum)
        for (int v = 0; v < V; ++v) sum += vexp(l[v] - mx);
      }
      losses[n] = mx + std::log(sum) - target_logit;
    }
  });
  double total = 0.0;
  for (int n = 0; n < N; ++n) total += losses[n];
  return total;
}

}  // namespace onebit::kernels::cpu
