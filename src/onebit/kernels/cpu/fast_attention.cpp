// Causal attention with GQA, flash style: the forward keeps y and the per-row log-sum-exp only; the
// backward recomputes the probabilities from q, k and lse. The unit of work is a tile of kRows query
// rows against the keys it can see (the masked upper triangle is skipped), so a thread's scratch is
// one or two [kRows, T] score tiles, never a head's [T, T] matrix.
//
// Determinism (exact resume): every output element is written by exactly one pool item, and each item
// runs serially in a fixed order, so the results are bitwise reproducible and do not depend on the
// thread count. The forward has one item per (batch, head, query tile); the backward one item per
// (batch, kv head), which walks the heads of its GQA group and their query tiles in order,
// accumulating dk/dv in place (a kv head's dk/dv has one writer, no reduction across threads).
//
// Dropout (p > 0) scales probability (t, j) by Z = dropout_factor(seed, ((b*H + h)*T + t)*T + j, p)
// after the softmax: y = (P ∘ Z) V. The backward uses dP = Z ∘ (dY Vᵀ) and dV += (P ∘ Z)ᵀ dY, and D =
// rowsum(dY ∘ Y) still equals rowsum(P ∘ dP). p = 0 runs the loops without the mask.
#include <algorithm>
#include <cmath>
#include <vector>

#include "onebit/kernels/cpu/fast.h"
#include "onebit/kernels/cpu/scratch.h"
#include "onebit/kernels/cpu/thread_pool.h"
#include "onebit/kernels/cpu/vec_math.h"

namespace onebit::kernels::cpu {
namespace {
constexpr int kRows = 64;
}  // namespace

void attention_forward(float* y, float* lse, const float* q, const float* k, const float* v, int B, int T, int H,
                       int KV, int hd, float p_drop, uint64_t seed) {
  const float scale = 1.0f / std::sqrt((float)hd);
  const int group = H / KV;
  const int ldq = H * hd, ldk = KV * hd;
  const int tiles = (T + kRows - 1) / kRows;
  const int64_t heads = (int64_t)B * H;
  parallel_for(heads * tiles, [&](int64_t item) {
    // The last query tiles see the most keys: hand them out first so the pool ends evenly.
    const int tile = tiles - 1 - (int)(item / heads);
    const int b = (int)(item % heads / H), h = (int)(item % H);
    const int kh = h / group;
    const float* qb = q + (size_t)b * T * ldq + (size_t)h * hd;
    const float* kb = k + (size_t)b * T * ldk + (size_t)kh * hd;
    const float* vb = v + (size_t)b * T * ldk + (size_t)kh * hd;
    float* yb = y + (size_t)b * T * ldq + (size_t)h * hd;
    float* lb = lse + ((size_t)b * H + h) * T;
    const int r0 = tile * kRows, rows = std::min(kRows, T - r0);
    const int cols = r0 + rows;  // keys 0..cols-1 are visible to some row of this tile
    static thread_local std::vector<float> buf;
    float* P = aligned_scratch(buf, (size_t)rows * cols);  // a [kRows, T] tile
    gemm_serial(false, true, rows, cols, hd, scale, qb + (size_t)r0 * ldq, ldq, kb, ldk, 0.0f, P, cols);
    for (int i = 0; i < rows; ++i) {
      float* p = P + (size_t)i * cols;
      const int n = r0 + i + 1;
      const float mx = vmax(p, (size_t)n, -INFINITY);
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
      for (int j = n; j < cols; ++j) p[j] = 0.0f;
      lb[r0 + i] = mx + std::log(sum);
      if (p_drop > 0.0f) {
        const uint64_t row = (((uint64_t)b * H + h) * T + r0 + i) * T;
        for (int j = 0; j < n; ++j) p[j] *= dropout_factor(seed, row + j, p_drop);
      }
    }
    gemm_serial(false, false, rows, hd, cols, 1.0f, P, cols, vb, ldk, 0.0f, yb + (size_t)r0 * ldq, ldq);
  });
}

void attention_backward(float* dq, float* dk, float* dv, const float* dy, const float* q, const float* k,
                        const float* v, const float* y, const float* lse, int B, int T, int H, int KV, int hd,
                        float p_drop, uint64_t seed) {
  const float scale = 1.0f / std::sqrt((float)hd);
  const int group = H / KV;
  const int ldq = H * hd, ldk = KV * hd;
  const bool drop = p_drop > 0.0f;
  parallel_for((int64_t)B * KV, [&](int64_t item) {
    const int b = (int)(item / KV), kh = (int)(item % KV);
    static thread_local std::vector<float> buf;
    const int max_rows = std::min(kRows, T);
    float* P = aligned_scratch(buf, 2 * (size_t)max_rows * T);
    float* dS = P + (size_t)max_rows * T;
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
      const float* yb = y + (size_t)b * T * ldq + (size_t)h * hd;
      const float* lb = lse + ((size_t)b * H + h) * T;
      float* dqb = dq + (size_t)b * T * ldq + (size_t)h * hd;
      for (int r0 = 0; r0 < T; r0 += kRows) {
        const int rows = std::min(kRows, T - r0);
        const int cols = r0 + rows;
        // P = exp(scale Q K^T - lse), recomputed; zero above the diagonal.
        gemm_serial(false, true, rows, cols, hd, scale, qb + (size_t)r0 * ldq, ldq, kb, ldk, 0.0f, P, cols);
        // Over the whole tile width, masking by a multiply rather than stopping at the diagonal: the
        // width is a multiple of the vector length (but at the end), so there is no scalar remainder
        // (scores above the diagonal are finite, so exp(.) * 0 is exactly 0).
        for (int i = 0; i < rows; ++i) {
          float* p = P + (size_t)i * cols;
          const int n = r0 + i + 1;
          const float l = lb[r0 + i];
#pragma omp simd
          for (int j = 0; j < cols; ++j) p[j] = vexp(p[j] - l) * (j < n ? 1.0f : 0.0f);
        }
        // dP = dY V^T ; dV += P^T dY (with dropout: after the loop below, from P ∘ Z)
        gemm_serial(false, true, rows, cols, hd, 1.0f, dyb + (size_t)r0 * ldq, ldq, vb, ldk, 0.0f, dS, cols);
        if (!drop) gemm_serial(true, false, cols, hd, rows, 1.0f, P, cols, dyb + (size_t)r0 * ldq, ldq, 1.0f, dvb, ldk);
        // dS = P * (dP - D) * scale with D = rowsum(dY * Y) (= rowsum(P * dP)).
        for (int i = 0; i < rows; ++i) {
          const float* dyi = dyb + (size_t)(r0 + i) * ldq;
          const float* yi = yb + (size_t)(r0 + i) * ldq;
          float D = 0.0f;
#pragma omp simd reduction(+ : D)
          for (int c = 0; c < hd; ++c) D += dyi[c] * yi[c];
          float* p = P + (size_t)i * cols;
          float* ds = dS + (size_t)i * cols;
          if (drop) {
            // Z over the visible keys only (p is 0 above the diagonal): dP = Z dP~, then P becomes P ∘ Z.
            const uint64_t row = (((uint64_t)b * H + h) * T + r0 + i) * T;
            const int n = r0 + i + 1;
            for (int j = 0; j < n; ++j) {
              const float z = dropout_factor(seed, row + j, p_drop);
              ds[j] = p[j] * (z * ds[j] - D) * scale;
              p[j] *= z;
            }
            for (int j = n; j < cols; ++j) ds[j] = 0.0f;
          } else {
#pragma omp simd
            for (int j = 0; j < cols; ++j) ds[j] = p[j] * (ds[j] - D) * scale;  // 0 above the diagonal, as p
          }
        }
        if (drop) gemm_serial(true, false, cols, hd, rows, 1.0f, P, cols, dyb + (size_t)r0 * ldq, ldq, 1.0f, dvb, ldk);
        // dQ = dS K ; dK += dS^T Q
        gemm_serial(false, false, rows, hd, cols, 1.0f, dS, cols, kb, ldk, 0.0f, dqb + (size_t)r0 * ldq, ldq);
        gemm_serial(true, false, cols, hd, rows, 1.0f, dS, cols, qb + (size_t)r0 * ldq, ldq, 1.0f, dkb, ldk);
      }
    }
  });
}

}  // namespace onebit::kernels::cpu
