#pragma once
// ggml's ternary block layouts (llama.cpp ggml-common.h, ggml-quants.c), 256 weights per block:
//   TQ2_0 (66 bytes): qs[64], d (f16). Weight j of 128-chunk c, lane m = j%32, group n = j/32 is the
//     2-bit code (w+1) in bits 2n..2n+1 of qs[32c + m].
//   TQ1_0 (54 bytes): qs[48], qh[4], d (f16). qs[0..31] hold weights 0..159 (5 per byte, lanes of 32),
//     qs[32..47] weights 160..239 (5 per byte, lanes of 16), qh weights 240..255 (4 per byte); a byte
//     holding trits t0..t4 (most significant first) is ceil(sum t_i 3^(4-i) * 256 / 243), so the
//     trit n is ((uint8_t)(byte * 3^n) * 3) >> 8.
// The value of a weight is (code - 1) * d. Quantizing follows quantize_row_tq*_ref exactly:
// d = max|x| of the block, code = lroundf(x / d) + 1 (rounding half away from zero).
#include <cstddef>
#include <cstdint>
#include <span>

namespace onebit::formats::gguf {

inline constexpr size_t kTQ2BlockBytes = 66;
inline constexpr size_t kTQ1BlockBytes = 54;

// n must be a multiple of 256; out holds n/256 blocks.
void quantize_tq2_0(std::span<const float> x, std::span<uint8_t> out);
void quantize_tq1_0(std::span<const float> x, std::span<uint8_t> out);
void dequantize_tq2_0(std::span<const uint8_t> in, std::span<float> y);
void dequantize_tq1_0(std::span<const uint8_t> in, std::span<float> y);

// Ternary codes in {-1, 0, 1} written with d = 1 (0 for an all-zero block): the exact encoding of a
// per-tensor-scaled ternary matrix whose scale travels in a separate F32 "<name>.scale" tensor.
void encode_codes_tq2_0(std::span<const int8_t> codes, std::span<uint8_t> out);
void encode_codes_tq1_0(std::span<const int8_t> codes, std::span<uint8_t> out);

}  // namespace onebit::formats::gguf
