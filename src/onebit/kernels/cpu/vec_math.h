#pragma once
// Branch-free float math written so gcc auto-vectorizes loops that call it (libm's expf/tanhf do not
// vectorize without -ffast-math). exp: Cody-Waite range reduction + degree-6 polynomial, ~2 ulp.
#include <algorithm>
#include <bit>
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

inline float vsigmoid(float x) { return 1.0f / (1.0f + vexp(-x)); }

// tanh via exp of a non-positive argument (no overflow), sign restored afterwards.
inline float vtanh(float x) {
  const float a = x < 0 ? -x : x;
  const float e = vexp(-2.0f * a);
  const float t = (1.0f - e) / (1.0f + e);
  return x < 0 ? -t : t;
}

}  // namespace onebit::kernels::cpu
