// Causal attention with GQA. One pool item per (batch, head) in forward and per (batch, kv head) in
// backward (so dk/dv of a kv head have one writer). Rows go in blocks of kRows; each block only
// multiplies against the keys it can see, skipping the masked upper triangle.
#include <algorithm>
#include <cmath>
#include <vector>

#include "onebit/kernels/cpu/fast.h"
#include "onebit/kernels/cpu/thread_pool.h"
#include "onebit/kernels/cpu/vec_math.h"

namespace onebit::kernels::cpu {
namespace {
constexpr int kRows = 64;
}

void attention_forward(float* y, float* probs, const float* q, const float* k, const float* v, int B, int T, int H,
                       int KV, int hd) {
  const float scale = 1.0f / std::sqrt((float)hd);
  const int group = H / KV;
  const int ldq = H * hd, ldk = KV * hd;
  parallel_for((int64_t)B * H, [&](int64_t item) {
    const int b = (int)(item / H), h = (int)(item % H);
    const int kh = h / group;
    const float* qb = q + (size_t)b * T * ldq + (size_t)h * hd;
    const float* kb = k + (size_t)b * T * ldk + (size_t)kh * hd;
    const float* vb = v + (size_t)b * T * ldk + (size_t)kh * hd;
    float* yb = y + (size_t)b * T * ldq + (size_t)h * hd;
    float* P = probs + ((size_t)b * H + h) * T * T;
    for (int r0 = 0; r0 < T; r0 += kRows) {
      const int rows = std::min(kRows, T - r0);
      const int cols = r0 + rows;  // keys 0..cols-1 are visible to some row of this block
      gemm_serial(false, true, rows, cols, hd, scale, qb + (size_t)r0 * ldq, ldq, kb, ldk, 0.0f, P + (size_t)r0 * T, T);
      for (int t = r0; t < r0 + rows; ++t) {
        float* p = P + (size_t)t * T;
        const int n = t + 1;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < n; ++j) mx = std::max(mx, p[j]);
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < n; ++j) {
          const float e = vexp(p[j] - mx);
          p[j] = e;
          sum += e;
        }
        const float inv = 1.0f / sum;
#pragma omp simd
        for (int j = 0; j < n; ++j) p[j] *= inv;
        for (int j = n; j < T; ++j) p[j] = 0.0f;
      }
      gemm_serial(false, false, rows, hd, cols, 1.0f, P + (size_t)r0 * T, T, vb, ldk, 0.0f, yb + (size_t)r0 * ldq, ldq);
    }
  });
}

void attention_backward(float* dq, float* dk, float* dv, const float* dy, const float* q, const float* k,
                        const float* v, const float* probs, int B, int T, int H, int KV, int hd) {
  const float scale = 1.0f / std::sqrt((float)hd);
  const int group = H / KV;
  const int ldq = H * hd, ldk = KV * hd;
  parallel_for((int64_t)B * KV, [&](int64_t item) {
    const int b = (int)(item / KV), kh = (int)(item % KV);
    static thread_local std::vector<float> scratch;
    scratch.resize((size_t)kRows * T);
    float* dS = scratch.data();
    const float* kb = k + (size_t)b * T * ldk + (size_t)kh * hd;
    const float* vb = v + (size_t)b * T * ldk + (size_t)kh * hd;
    float* dkb = dk + (size_t)b * T * ldk + (size_t)kh * hd;
    float* dvb = dv + (size_t)b * T * ldk + (size_t)kh * hd;
    for (int t = 0; t < T; ++t) {
      std::fill(dkb + (size_t)t * ldk, dkb + (size_t)t * ldk + hd, 0.0f);
      std::fill(dvb + (size_t)t * ldk, dvb + (size_t)t * ldk + hd, 0.0f);
    }
    for (int h = kh * group; h < (kh + 1) * group; ++h) {
      const float* qb = q + (size_t)b * T * ldq + (size_t)h * hd;
      const float* dyb = dy + (size_t)b * T * ldq + (size_t)h * hd;
      float* dqb = dq + (size_t)b * T * ldq + (size_t)h * hd;
      const float* P = probs + ((size_t)b * H + h) * T * T;
      for (int r0 = 0; r0 < T; r0 += kRows) {
        const int rows = std::min(kRows, T - r0);
        const int cols = r0 + rows;
        const float* Pb = P + (size_t)r0 * T;
        // dP = dY V^T
        gemm_serial(false, true, rows, cols, hd, 1.0f, dyb + (size_t)r0 * ldq, ldq, vb, ldk, 0.0f, dS, cols);
        // dV += P^T dY
        gemm_serial(true, false, cols, hd, rows, 1.0f, Pb, T, dyb + (size_t)r0 * ldq, ldq, 1.0f, dvb, ldk);
        // dS = P * (dP - sum_j P dP) * scale
        for (int i = 0; i < rows; ++i) {
          const float* p = Pb + (size_t)i * T;
          float* ds = dS + (size_t)i * cols;
          const int n = r0 + i + 1;
          float D = 0.0f;
#pragma omp simd reduction(+ : D)
          for (int j = 0; j < n; ++j) D += p[j] * ds[j];
#pragma omp simd
          for (int j = 0; j < n; ++j) ds[j] = p[j] * (ds[j] - D) * scale;
          for (int j = n; j < cols; ++j) ds[j] = 0.0f;
        }
        // dQ = dS K ; dK += dS^T Q
        gemm_serial(false, false, rows, hd, cols, 1.0f, dS, cols, kb, ldk, 0.0f, dqb + (size_t)r0 * ldq, ldq);
        gemm_serial(true, false, cols, hd, rows, 1.0f, dS, cols, qb + (size_t)r0 * ldq, ldq, 1.0f, dkb, ldk);
      }
    }
  });
}

}  // namespace onebit::kernels::cpu
