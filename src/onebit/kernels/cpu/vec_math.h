#pragma once
// Branch-free float math written so gcc auto-vectorizes loops that call it (libm's expf/tanhf do not
// vectorize without -ffast-math). exp: Cody-Waite range reduction + degree-6 polynomial, ~2 ulp.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace onebit::kernels::cpu {

inline float vexp(float x) {
  // Written with min/max and rint (round to nearest even in the default rounding mode, which onebit
  // never changes) because gcc 12 vectorizes those, not a ?: clamp nor __builtin_roundevenf; the
  // values are bitwise those of the ?: and roundevenf form (checked over every float in [-100, 100]).
  x = std::min(std::max(x, -87.3f), 88.3f);
  const float n = __builtin_rintf(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t e = static_cast<int32_t>(n) + 127;
  return p * std::bit_cast<float>(static_cast<uint32_t>(e) << 23);
}

// clamp(roundeven(x), lo, hi), bitwise (NaN and -0 included), in the form gcc 12 vectorizes (see vexp):
// the loops of the weight and activation quantizers that used std::clamp(__builtin_roundevenf(..)) ran
// one element at a time.
inline float vround_clamp(float x, float lo, float hi) { return std::min(std::max(__builtin_rintf(x), lo), hi); }

// std::max folded over f(p[0]), ..., f(p[n-1]) starting from init (NaN elements are skipped, as std::max
// skips them), in 32 lanes that gcc 12 turns into two vmaxps chains: it leaves `#pragma omp simd
// reduction(max : m)` over std::max a scalar vmaxss chain, one element per 4 cycles (in the training
// step's cross-entropy that was three quarters of its time). The maximum of a set does not depend on
// the order, so the value is the scalar fold's (up to the sign of a zero maximum, which no caller sees).
template <typename F>
inline float vmax_fold(const float* p, size_t n, float init, F f) {
  constexpr int L = 32;
  float m[L];
  for (int j = 0; j < L; ++j) m[j] = init;
  size_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) m[j] = std::max(m[j], f(p[i + j]));
  float r = init;
  for (int j = 0; j < L; ++j) r = std::max(r, m[j]);
  for (; i < n; ++i) r = std::max(r, f(p[i]));
  return r;
}
inline float vmax(const float* p, size_t n, float init) {
  return vmax_fold(p, n, init, [](float x) { return x; });
}
inline float vmax_abs(const float* p, size_t n, float init) {
  return vmax_fold(p, n, init, [](float x) { return std::fabs(x); });
}

inline float vsigmoid(float x) { return 1.0f / (1.0f + vexp(-x)); }

// tanh via exp of a non-positive argument (no overflow), sign restored afterwards.
inline float vtanh(float x) {
  const float a = x < 0 ? -x : x;
  const float e = vexp(-2.0f * a);
  const float t = (1.0f - e) / (1.0f + e);
  return x < 0 ? -t : t;
}

}  // namespace onebit::kernels::cpu
