#pragma once
// transformers' BitNet ternary layout (integrations/bitnet.py pack_weights / unpack_weights, the
// layout of microsoft/bitnet-b1.58-2B-4T): the codes t in {-1, 0, +1} of a weight W[out, in] stored
// as uint8[out/4, in]; row k*R + i of W (R = out/4) sits in byte row i at bits 2k..2k+1, as t + 1.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace onebit::hfio {

// codes: out*in values in {-1, 0, 1}, row-major; out must be divisible by 4.
std::vector<uint8_t> pack_ternary_rows(const int8_t* codes, int64_t out, int64_t in);

// The inverse; a 2-bit field holding 3 (no ternary code) is an error naming `where`.
std::vector<int8_t> unpack_ternary_rows(const uint8_t* packed, int64_t out, int64_t in, const std::string& where);

// Master weights W = t * g / p (p: the fraction of non-zero codes) whose absmean requantization gives
// back exactly these codes at scale g: mean|W| = g, and |W| / g = 1/p >= 1 rounds to +-1. A packed
// checkpoint has no master weights; these are the ones that reproduce it (the starting point of a
// fine-tune from packed weights).
std::vector<float> master_from_codes(const std::vector<int8_t>& codes, float g);

// Ternary quantization as transformers' WeightQuant does it: g = max(mean|W|, 1e-5),
// t = clamp(round_half_even(W / g), -1, 1). Returns g.
float ternary_codes(const float* w, size_t n, std::vector<int8_t>& codes);

}  // namespace onebit::hfio
