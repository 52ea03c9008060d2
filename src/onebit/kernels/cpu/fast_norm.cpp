// RMSNorm forward (optionally fused with per-row int8 activation quantization) and backward, and the
// stand-alone activation quantizer. Rows are independent and split across threads; the weight
// gradient is reduced from per-chunk partials in chunk order, so results are bitwise reproducible.
#include <algorithm>
#include <cmath>
#include <vector>

#include "onebit/kernels/cpu/fast.h"
#include "onebit/kernels/cpu/thread_pool.h"
#include "onebit/kernels/cpu/vec_math.h"

namespace onebit::kernels::cpu {
namespace {

inline void quant_row(float* o, const float* x, int C) {
  const float m = vmax_abs(x, (size_t)C, 0.0f);
  const float s = 127.0f / std::max(m, 1e-5f);
  // A true division (not * (1/s)) keeps xq/s bitwise equal to the reference formula.
#pragma omp simd
  for (int c = 0; c < C; ++c) {
    const float q = vround_clamp(x[c] * s, -128.0f, 127.0f);
    o[c] = q / s;
  }
}

int64_t rows_per_chunk(int C) { return std::max<int64_t>(1, kMinChunk / std::max(1, C)); }

}  // namespace

void act_quant_int8(float* out, const float* x, int N, int C) {
  parallel_ranges(N, rows_per_chunk(C), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) quant_row(out + (size_t)n * C, x + (size_t)n * C, C);
  });
}

void rmsnorm_forward(float* out, float* out_q, float* rstd, const float* x, const float* w, int N, int C, float eps) {
  parallel_ranges(N, rows_per_chunk(C), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const float* xr = x + (size_t)n * C;
      float* o = out + (size_t)n * C;
      float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
      for (int c = 0; c < C; ++c) ss += xr[c] * xr[c];
      const float r = 1.0f / std::sqrt(ss / C + eps);
      rstd[n] = r;
#pragma omp simd
      for (int c = 0; c < C; ++c) o[c] = xr[c] * r * w[c];
      if (out_q) quant_row(out_q + (size_t)n * C, o, C);
    }
  });
}

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd, int N,
                      int C) {
  const int64_t chunks = num_chunks(N, rows_per_chunk(C));
  static thread_local std::vector<float> partial;
  partial.assign((size_t)chunks * C, 0.0f);
  float* parts = partial.data();
  parallel_for(chunks, [&](int64_t ch) {
    float* pw = parts + (size_t)ch * C;
    for (int64_t n = N * ch / chunks; n < N * (ch + 1) / chunks; ++n) {
      const float* xr = x + (size_t)n * C;
      const float* g = dout + (size_t)n * C;
      float* d = dx + (size_t)n * C;
      const float r = rstd[n];
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int c = 0; c < C; ++c) dot += g[c] * w[c] * xr[c];
      const float k = dot * r / C;
#pragma omp simd
      for (int c = 0; c < C; ++c) {
        const float xhat = xr[c] * r;
        pw[c] += g[c] * xhat;
        d[c] += r * (g[c] * w[c] - xhat * k);
      }
    }
  });
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const float* pw = parts + (size_t)ch * C;
#pragma omp simd
    for (int c = 0; c < C; ++c) dw[c] += pw[c];
  }
}

}  // namespace onebit::kernels::cpu
