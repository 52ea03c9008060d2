#include "onebit/hfio/ternary_pack.h"

#include <algorithm>
#include <cmath>

#include "onebit/core/error.h"

namespace onebit::hfio {

std::vector<uint8_t> pack_ternary_rows(const int8_t* codes, int64_t out, int64_t in) {
  OB_CHECK(out % 4 == 0, "pack_ternary_rows: out_features ", out, " is not divisible by 4");
  const int64_t R = out / 4;
  std::vector<uint8_t> packed(static_cast<size_t>(R * in), 0);
  for (int64_t k = 0; k < 4; ++k)
    for (int64_t i = 0; i < R; ++i)
      for (int64_t c = 0; c < in; ++c) {
        const int t = codes[(k * R + i) * in + c];
        packed[i * in + c] |= static_cast<uint8_t>((t + 1) << (2 * k));
      }
  return packed;
}

std::vector<int8_t> unpack_ternary_rows(const uint8_t* packed, int64_t out, int64_t in, const std::string& where) {
  const int64_t R = out / 4;
  std::vector<int8_t> codes(static_cast<size_t>(out * in));
  for (int64_t k = 0; k < 4; ++k)
    for (int64_t i = 0; i < R; ++i)
      for (int64_t c = 0; c < in; ++c) {
        const int v = (packed[i * in + c] >> (2 * k)) & 3;
        if (v == 3) fail(where, ": byte [", i, ", ", c, "] holds the 2-bit value 3 at bits ", 2 * k, "..", 2 * k + 1,
                         " (ternary codes are 0, 1, 2 for -1, 0, +1)");
        codes[(k * R + i) * in + c] = static_cast<int8_t>(v - 1);
      }
  return codes;
}

std::vector<float> master_from_codes(const std::vector<int8_t>& codes, float g) {
  size_t nonzero = 0;
  for (int8_t t : codes) nonzero += t != 0;
  std::vector<float> w(codes.size(), 0.0f);
  if (nonzero == 0) return w;
  const float mag = static_cast<float>(static_cast<double>(g) * codes.size() / nonzero);
  for (size_t i = 0; i < codes.size(); ++i) w[i] = codes[i] * mag;
  return w;
}

float ternary_codes(const float* w, size_t n, std::vector<int8_t>& codes) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::abs(static_cast<double>(w[i]));
  const float g = static_cast<float>(std::max(n ? sum / n : 0.0, 1e-5));
  codes.resize(n);
  for (size_t i = 0; i < n; ++i)
    codes[i] = static_cast<int8_t>(std::clamp(std::nearbyint(w[i] / g), -1.0f, 1.0f));
  return g;
}

}  // namespace onebit::hfio
