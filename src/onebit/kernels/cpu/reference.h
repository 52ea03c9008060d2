#pragma once
// The plain, obvious implementation of every kernel, templated on the scalar type so tests can run
// the whole model in double. Fast backends are tested against these; keep them simple, not fast.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "onebit/kernels/kernels.h"

namespace onebit::kernels::ref {

template <typename T>
T round_half_even(T x) {
  return std::nearbyint(x);  // default rounding mode: ties to even (as torch.round)
}

template <typename T>
void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C,
          int ldc) {
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double acc = 0;
      for (int p = 0; p < K; ++p) {
        const T a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
        const T b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
        acc += (double)a * (double)b;
      }
      T& c = C[(size_t)i * ldc + j];
      c = (T)(alpha * acc + (beta == T(0) ? 0.0 : (double)beta * c));
    }
}

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* table, int N, int C) {
  for (int n = 0; n < N; ++n) std::memcpy(out + (size_t)n * C, table + (size_t)tokens[n] * C, sizeof(T) * C);
}

template <typename T>
void embedding_backward(T* dtable, const T* dout, const int32_t* tokens, int N, int C) {
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) dtable[(size_t)tokens[n] * C + c] += dout[(size_t)n * C + c];
}

template <typename T>
void act_quant_int8(T* out, const T* x, int N, int C) {
  for (int n = 0; n < N; ++n) {
    const T* xr = x + (size_t)n * C;
    T* o = out + (size_t)n * C;
    T m = 0;
    for (int c = 0; c < C; ++c) m = std::max(m, std::abs(xr[c]));
    const T s = T(127) / std::max(m, T(1e-5));
    for (int c = 0; c < C; ++c) o[c] = std::clamp(round_half_even(xr[c] * s), T(-128), T(127)) / s;
  }
}

template <typename T>
void rmsnorm_forward(T* out, T* out_q, T* rstd, const T* x, const T* w, int N, int C, float eps) {
  for (int n = 0; n < N; ++n) {
    const T* xr = x + (size_t)n * C;
    double ss = 0;
    for (int c = 0; c < C; ++c) ss += (double)xr[c] * xr[c];
    const T r = (T)(1.0 / std::sqrt(ss / C + eps));
    rstd[n] = r;
    for (int c = 0; c < C; ++c) out[(size_t)n * C + c] = xr[c] * r * w[c];
  }
  if (out_q) act_quant_int8(out_q, out, N, C);
}

template <typename T>
void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, int N, int C) {
  for (int n = 0; n < N; ++n) {
    const T* xr = x + (size_t)n * C;
    const T* g = dout + (size_t)n * C;
    const double r = rstd[n];
    double dot = 0;  // sum_c g_c w_c xhat_c
    for (int c = 0; c < C; ++c) dot += (double)g[c] * w[c] * xr[c] * r;
    for (int c = 0; c < C; ++c) {
      const double xhat = xr[c] * r;
      dw[c] += (T)(g[c] * xhat);
      dx[(size_t)n * C + c] += (T)(r * ((double)g[c] * w[c] - xhat * dot / C));
    }
  }
}

template <typename T>
QuantScale weight_quant_scale(const T* w, size_t n, WeightQuant q) {
  QuantScale s;
  if (q == WeightQuant::Ternary) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += std::abs((double)w[i]);
    s.scale = (float)(sum / n + 1e-5);
  } else if (q == WeightQuant::Binary) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += w[i];
    s.center = (float)(sum / n);
    double dev = 0;
    for (size_t i = 0; i < n; ++i) dev += std::abs((double)w[i] - s.center);
    s.scale = (float)(dev / n);
  } else if (q == WeightQuant::Int8) {
    double m = 0;
    for (size_t i = 0; i < n; ++i) m = std::max(m, std::abs((double)w[i]));
    s.scale = (float)m;
  }
  return s;
}

// transformers' BitNet ternary scale: max(mean|W|, 1e-5).
template <typename T>
QuantScale ternary_scale_clamped(const T* w, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::abs((double)w[i]);
  QuantScale s;
  s.scale = (float)std::max(sum / n, 1e-5);
  return s;
}

inline float bf16_round(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

template <typename T>
T quantize_one(T w, WeightQuant q, QuantScale s, float k) {
  switch (q) {
    case WeightQuant::None:
      return w;
    case WeightQuant::BF16:
      return (T)bf16_round((float)w);
    case WeightQuant::Int8: {
      const T inv = T(127) / std::max(T(s.scale), T(1e-5));
      return std::clamp(round_half_even(w * inv), T(-127), T(127)) / inv;
    }
    case WeightQuant::Ternary: {
      const T g = s.scale, x = w / g;
      if (k > 0) return g * T(0.5) * (std::tanh(T(k) * (x - T(0.5))) + std::tanh(T(k) * (x + T(0.5))));
      return g * std::clamp(round_half_even(x), T(-1), T(1));
    }
    case WeightQuant::Binary: {
      const T b = s.scale, d = w - T(s.center);
      if (k > 0) return b * std::tanh(T(k) * d / std::max(b, T(1e-8)));
      return d >= 0 ? b : -b;
    }
  }
  return w;
}

template <typename T>
void weight_quantize(T* out, const T* w, size_t n, WeightQuant q, QuantScale s, float k) {
  for (size_t i = 0; i < n; ++i) out[i] = quantize_one(w[i], q, s, k);
}

template <typename T>
void weight_code_counts(const T* w, size_t n, WeightQuant q, QuantScale s, int64_t counts[3]) {
  for (size_t i = 0; i < n; ++i) {
    int code;
    if (q == WeightQuant::Ternary)
      code = (int)std::clamp(round_half_even(w[i] / T(s.scale)), T(-1), T(1));
    else if (q == WeightQuant::Binary)
      code = w[i] - T(s.center) >= 0 ? 1 : -1;
    else
      continue;
    counts[code + 1]++;
  }
}

template <typename T>
void rope(T* x, const T* cos, const T* sin, int B, int Tn, int H, int hd, bool inverse) {
  const int half = hd / 2;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < Tn; ++t)
      for (int h = 0; h < H; ++h) {
        T* v = x + (((size_t)b * Tn + t) * H + h) * hd;
        for (int i = 0; i < half; ++i) {
          const T c = cos[(size_t)t * half + i], s = inverse ? -sin[(size_t)t * half + i] : sin[(size_t)t * half + i];
          const T a = v[i], bb = v[i + half];
          v[i] = a * c - bb * s;
          v[i + half] = bb * c + a * s;
        }
      }
}

// Causal attention with GQA, flash semantics: the forward returns y and the per-row log-sum-exp of the
// scaled scores; the backward recomputes each probability as exp(s - lse) and uses D = dy . y (equal to
// sum_j P_j dP_j, with dropout too). One row of scores at a time, in double. Dropout (p > 0) multiplies
// probability j of row t by dropout_factor(seed, ((b*H + h)*T + t)*T + j, p) (kernels.h).
template <typename T>
void attention_forward(T* y, T* lse, const T* q, const T* k, const T* v, int B, int Tn, int H, int KV, int hd,
                       float p, uint64_t seed) {
  const double scale = 1.0 / std::sqrt((double)hd);
  const int group = H / KV;
  std::vector<double> s(Tn);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int kh = h / group;
      for (int t = 0; t < Tn; ++t) {
        const T* qt = q + (((size_t)b * Tn + t) * H + h) * hd;
        double mx = -INFINITY;
        for (int j = 0; j <= t; ++j) {
          const T* kj = k + (((size_t)b * Tn + j) * KV + kh) * hd;
          double d = 0;
          for (int i = 0; i < hd; ++i) d += (double)qt[i] * kj[i];
          s[j] = d * scale;
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int j = 0; j <= t; ++j) sum += std::exp(s[j] - mx);
        for (int j = 0; j <= t; ++j) s[j] = std::exp(s[j] - mx) / sum;
        lse[((size_t)b * H + h) * Tn + t] = (T)(mx + std::log(sum));
        if (p > 0) {
          const uint64_t row = (((uint64_t)b * H + h) * Tn + t) * Tn;
          for (int j = 0; j <= t; ++j) s[j] *= (double)dropout_factor(seed, row + j, p);
        }
        T* yt = y + (((size_t)b * Tn + t) * H + h) * hd;
        for (int i = 0; i < hd; ++i) {
          double acc = 0;
          for (int j = 0; j <= t; ++j) acc += s[j] * v[(((size_t)b * Tn + j) * KV + kh) * hd + i];
          yt[i] = (T)acc;
        }
      }
    }
}

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dy, const T* q, const T* k, const T* v, const T* y,
                        const T* lse, int B, int Tn, int H, int KV, int hd, float p, uint64_t seed) {
  const double scale = 1.0 / std::sqrt((double)hd);
  const int group = H / KV;
  std::fill(dq, dq + (size_t)B * Tn * H * hd, T(0));
  std::fill(dk, dk + (size_t)B * Tn * KV * hd, T(0));
  std::fill(dv, dv + (size_t)B * Tn * KV * hd, T(0));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int kh = h / group;
      for (int t = 0; t < Tn; ++t) {
        const size_t qt_off = (((size_t)b * Tn + t) * H + h) * hd;
        const T *qt = q + qt_off, *dyt = dy + qt_off, *yt = y + qt_off;
        T* dqt = dq + qt_off;
        const double l = lse[((size_t)b * H + h) * Tn + t];
        double D = 0;
        for (int i = 0; i < hd; ++i) D += (double)dyt[i] * yt[i];
        const uint64_t row = (((uint64_t)b * H + h) * Tn + t) * Tn;
        for (int j = 0; j <= t; ++j) {
          const size_t kj_off = (((size_t)b * Tn + j) * KV + kh) * hd;
          double s = 0, dp = 0;
          for (int i = 0; i < hd; ++i) {
            s += (double)qt[i] * k[kj_off + i];
            dp += (double)dyt[i] * v[kj_off + i];
          }
          // z = 1 exactly without dropout, so these products change no bits there.
          const double z = p > 0 ? (double)dropout_factor(seed, row + j, p) : 1.0;
          const double pr = std::exp(s * scale - l);
          const double ds = pr * (z * dp - D) * scale;
          for (int i = 0; i < hd; ++i) {
            dv[kj_off + i] += (T)(pr * z * dyt[i]);
            dqt[i] += (T)(ds * k[kj_off + i]);
            dk[kj_off + i] += (T)(ds * qt[i]);
          }
        }
      }
    }
}

template <typename T>
void gated_act_value(T g, GatedAct act, T& f, T& df) {
  switch (act) {
    case GatedAct::SwiGLU: {
      const T sg = T(1) / (T(1) + std::exp(-g));
      f = g * sg;
      df = sg * (T(1) + g * (T(1) - sg));
      return;
    }
    case GatedAct::ReLU2: {
      const T r = g > 0 ? g : T(0);
      f = r * r;
      df = T(2) * r;
      return;
    }
    case GatedAct::GELU: {
      const T c = T(0.7978845608028654), a = T(0.044715);
      const T th = std::tanh(c * (g + a * g * g * g));
      f = T(0.5) * g * (T(1) + th);
      df = T(0.5) * (T(1) + th) + T(0.5) * g * (T(1) - th * th) * c * (T(1) + T(3) * a * g * g);
      return;
    }
  }
}

template <typename T>
void gated_act_forward(T* out, const T* gate, const T* up, size_t n, GatedAct act) {
  for (size_t i = 0; i < n; ++i) {
    T f = 0, df = 0;
    gated_act_value(gate[i], act, f, df);
    out[i] = f * up[i];
  }
}

template <typename T>
void gated_act_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, size_t n, GatedAct act) {
  for (size_t i = 0; i < n; ++i) {
    T f = 0, df = 0;
    gated_act_value(gate[i], act, f, df);
    const T d = dout[i];
    dgate[i] = d * up[i] * df;
    dup[i] = d * f;
  }
}

template <typename T>
void residual_forward(T* out, const T* x, const T* y, T scale, float p, uint64_t seed, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const T m = p > 0 ? T(dropout_factor(seed, i, p)) : T(1);
    out[i] = x[i] + scale * m * y[i];
  }
}

template <typename T>
void residual_backward(T* dy, const T* dout, T scale, float p, uint64_t seed, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const T m = p > 0 ? T(dropout_factor(seed, i, p)) : T(1);
    dy[i] = scale * m * dout[i];
  }
}

template <typename T>
double cross_entropy(T* logits, T* losses, const int32_t* targets, int N, int V, T dscale, bool want_grad) {
  double total = 0;
  for (int n = 0; n < N; ++n) {
    T* l = logits + (size_t)n * V;
    const int tgt = targets[n];
    if (tgt < 0) {
      losses[n] = 0;
      if (want_grad) std::fill(l, l + V, T(0));
      continue;
    }
    double mx = -INFINITY;
    for (int v = 0; v < V; ++v) mx = std::max(mx, (double)l[v]);
    double sum = 0;
    for (int v = 0; v < V; ++v) sum += std::exp((double)l[v] - mx);
    const double lse = mx + std::log(sum);
    losses[n] = (T)(lse - l[tgt]);
    total += lse - l[tgt];
    if (want_grad) {
      for (int v = 0; v < V; ++v) l[v] = (T)(dscale * (std::exp((double)l[v] - lse) - (v == tgt ? 1.0 : 0.0)));
    }
  }
  return total;
}

template <typename T>
double grad_norm_sq(const T* g, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += (double)g[i] * (double)g[i];
  return s;
}

template <typename T>
T clip_factor(double norm_sq, double max_norm) {
  const double norm = std::sqrt(norm_sq);
  return max_norm > 0 && norm > max_norm && std::isfinite(norm) ? (T)(max_norm / (norm + 1e-6)) : T(1);
}

// torch.optim.AdamW as written, in T.
template <typename T>
void adamw_step(T* p, const T* g, T* m, T* v, const AdamWRange* ranges, size_t num_ranges, const AdamWHyper& h,
                const T* clip) {
  const T c = clip ? *clip : T(1);
  for (size_t ri = 0; ri < num_ranges; ++ri) {
    const AdamWRange& r = ranges[ri];
    for (size_t i = r.offset; i < r.offset + r.numel; ++i) {
      const T gi = g[i] * c;
      if (r.decay) p[i] *= T(1) - T(h.lr) * T(h.weight_decay);
      m[i] = T(h.beta1) * m[i] + (T(1) - T(h.beta1)) * gi;
      v[i] = T(h.beta2) * v[i] + (T(1) - T(h.beta2)) * gi * gi;
      p[i] -= T(h.lr) * (m[i] / T(h.bias1)) / (std::sqrt(v[i] / T(h.bias2)) + T(h.eps));
    }
  }
}

}  // namespace onebit::kernels::ref
