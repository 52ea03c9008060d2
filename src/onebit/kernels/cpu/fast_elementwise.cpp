// Elementwise and gather kernels: embedding, axpy, RoPE, gated activations, residual (+dropout).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "onebit/core/error.h"
#include "onebit/kernels/cpu/fast.h"
#include "onebit/kernels/cpu/thread_pool.h"
#include "onebit/kernels/cpu/vec_math.h"

namespace onebit::kernels::cpu {

void axpy(float* y, float a, const float* x, size_t n) {
  parallel_ranges((int64_t)n, 4 * kMinChunk, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) y[i] += a * x[i];
  });
}

void embedding_forward(float* out, const int32_t* tokens, const float* table, int N, int C, int vocab) {
  for (int n = 0; n < N; ++n)
    OB_CHECK(tokens[n] >= 0 && tokens[n] < vocab, "embedding: token id ", tokens[n], " at position ", n,
             " is outside the vocabulary [0, ", vocab, ")");
  parallel_ranges(N, std::max(1, (int)kMinChunk / C), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n)
      std::memcpy(out + (size_t)n * C, table + (size_t)tokens[n] * C, sizeof(float) * C);
  });
}

void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int N, int C) {
  // Chunks own column ranges, so repeated tokens never race and the sum order is fixed.
  parallel_ranges(C, std::max<int64_t>(16, kMinChunk / std::max(1, N)), [&](int64_t lo, int64_t hi) {
    for (int n = 0; n < N; ++n) {
      float* d = dtable + (size_t)tokens[n] * C;
      const float* g = dout + (size_t)n * C;
#pragma omp simd
      for (int64_t c = lo; c < hi; ++c) d[c] += g[c];
    }
  });
}

void rope(float* x, const float* cos, const float* sin, int B, int T, int H, int hd, bool inverse) {
  const int half = hd / 2;
  const float sign = inverse ? -1.0f : 1.0f;
  parallel_ranges((int64_t)B * T, std::max(1, (int)kMinChunk / (H * hd)), [&](int64_t lo, int64_t hi) {
    for (int64_t bt = lo; bt < hi; ++bt) {
      const int t = (int)(bt % T);
      const float* c = cos + (size_t)t * half;
      const float* s = sin + (size_t)t * half;
      for (int h = 0; h < H; ++h) {
        float* v = x + ((size_t)bt * H + h) * hd;
#pragma omp simd
        for (int i = 0; i < half; ++i) {
          const float a = v[i], bb = v[i + half], si = sign * s[i];
          v[i] = a * c[i] - bb * si;
          v[i + half] = bb * c[i] + a * si;
        }
      }
    }
  });
}

void gated_act_forward(float* out, const float* gate, const float* up, size_t n, GatedAct act) {
  parallel_ranges((int64_t)n, kMinChunk, [&](int64_t lo, int64_t hi) {
    switch (act) {
      case GatedAct::SwiGLU:
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) out[i] = gate[i] * vsigmoid(gate[i]) * up[i];
        return;
      case GatedAct::ReLU2:
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
          const float r = gate[i] > 0.0f ? gate[i] : 0.0f;
          out[i] = r * r * up[i];
        }
        return;
      case GatedAct::GELU:
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
          // 0.5*(1+tanh(z)) == sigmoid(2z), which keeps full relative accuracy where tanh(z) ~ -1.
          const float g = gate[i];
          const float sg = vsigmoid(2.0f * 0.7978845608028654f * (g + 0.044715f * g * g * g));
          out[i] = g * sg * up[i];
        }
        return;
    }
  });
}

void gated_act_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n,
                        GatedAct act) {
  parallel_ranges((int64_t)n, kMinChunk, [&](int64_t lo, int64_t hi) {
    switch (act) {
      case GatedAct::SwiGLU:
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
          const float g = gate[i], sg = vsigmoid(g), d = dout[i];
          dgate[i] = d * up[i] * sg * (1.0f + g * (1.0f - sg));
          dup[i] = d * g * sg;
        }
        return;
      case GatedAct::ReLU2:
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
          const float r = gate[i] > 0.0f ? gate[i] : 0.0f, d = dout[i];
          dgate[i] = d * up[i] * 2.0f * r;
          dup[i] = d * r * r;
        }
        return;
      case GatedAct::GELU:
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
          const float g = gate[i], d = dout[i];
          const float c = 0.7978845608028654f, a = 0.044715f;
          const float sg = vsigmoid(2.0f * c * (g + a * g * g * g));  // = 0.5*(1+tanh)
          dgate[i] = d * up[i] * (sg + 2.0f * g * sg * (1.0f - sg) * c * (1.0f + 3.0f * a * g * g));
          dup[i] = d * g * sg;
        }
        return;
    }
  });
}

void residual_forward(float* out, const float* x, const float* y, float scale, float p, uint64_t seed, size_t n) {
  parallel_ranges((int64_t)n, kMinChunk, [&](int64_t lo, int64_t hi) {
    if (p > 0.0f) {
#pragma omp simd
      for (int64_t i = lo; i < hi; ++i) out[i] = x[i] + scale * dropout_factor(seed, (uint64_t)i, p) * y[i];
    } else {
#pragma omp simd
      for (int64_t i = lo; i < hi; ++i) out[i] = x[i] + scale * y[i];
    }
  });
}

void residual_backward(float* dy, const float* dout, float scale, float p, uint64_t seed, size_t n) {
  parallel_ranges((int64_t)n, kMinChunk, [&](int64_t lo, int64_t hi) {
    if (p > 0.0f) {
#pragma omp simd
      for (int64_t i = lo; i < hi; ++i) dy[i] = scale * dropout_factor(seed, (uint64_t)i, p) * dout[i];
    } else {
#pragma omp simd
      for (int64_t i = lo; i < hi; ++i) dy[i] = scale * dout[i];
    }
  });
}

}  // namespace onebit::kernels::cpu
