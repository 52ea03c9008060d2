#pragma once
// Weight matrices as the runtime's kernels read them. Quantized rows are cut into fixed blocks and
// padded with zero codes to a whole block (the activations are padded with zeros to kActPad), so the
// kernels never handle a ragged tail:
//   Ternary2   128 codes in 32 bytes: byte j holds codes j, j+32, j+64, j+96 (2 bits each, code+1,
//              lowest bits first): one shift and mask gives 32 consecutive codes (llama.cpp TQ2_0).
//   Ternary1_6 160 codes in 32 bytes, 5 per byte in base 3: byte j holds codes j+32i, i = 0..4, as
//              q = ceil(v * 256 / 243) for v = sum (code_i+1) * 3^(4-i); digit i is the top bits of
//              (q * 3^i mod 256) * 3 (llama.cpp TQ1_0's fixed-point trick): 1.6 bits per weight.
//   Binary1    256 signs in 32 bytes: byte j bit i is weight j+32i (1 = +1).
//   Int8       64 codes in 64 bytes, signed, |code| <= 127.
//   Q6         256 codes in 192 bytes, |code| <= 31, stored as u = code + 32 (6 bits): bytes 0..127
//              the low 4 bits (byte j: code j low nibble, code j+128 high nibble), bytes 128..191 the
//              top 2 bits (byte j: codes j, j+64, j+128, j+192 at bits 0-1, 2-3, 4-5, 6-7): a few
//              masks and shifts give 64 consecutive codes (the 6-bit LM head).
//   F32, BF16  plain rows (inputs in f32): the embedding, a high-precision head, layers whose input
//              is not quantized.
// One f32 scale per tensor (`scale`, the effective weight is code * scale), as DESIGN.md's ternary,
// binary and int8 quantizers define it; an 8-bit LM head has one scale per row instead.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace onebit::infer {

enum class PackedFormat { Ternary2, Ternary1_6, Binary1, Int8, Q6, F32, BF16 };
const char* to_string(PackedFormat f);

// Activation rows are padded with zeros to a multiple of this (a multiple of every block: 1280 = 5 * 256).
inline constexpr int kActPad = 1280;

// Codes per block and bytes per block of a quantized format (0 for F32/BF16).
int block_codes(PackedFormat f);
int block_bytes(PackedFormat f);
inline bool takes_int8_input(PackedFormat f) { return f != PackedFormat::F32 && f != PackedFormat::BF16; }

// 64-byte aligned bytes (SIMD loads of whole blocks), zero-filled.
class AlignedBytes {
 public:
  AlignedBytes() = default;
  explicit AlignedBytes(size_t n);
  uint8_t* data() { return p_.get(); }
  const uint8_t* data() const { return p_.get(); }
  size_t size() const { return n_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> p_;
  size_t n_ = 0;
};

struct PackedMatrix {
  PackedFormat format = PackedFormat::F32;
  int rows = 0, cols = 0;
  int padded_cols = 0;   // cols rounded up to the block (quantized formats), cols otherwise
  size_t row_bytes = 0;  // bytes per packed row
  float scale = 1.0f;    // per tensor: effective weight = code * scale
  std::vector<float> row_scales;  // when not empty: effective weight = code * row_scales[row]
  AlignedBytes data;

  const uint8_t* row(int r) const { return data.data() + (size_t)r * row_bytes; }
  float scale_of(int r) const { return row_scales.empty() ? scale : row_scales[r]; }
  size_t bytes() const { return data.size() + row_scales.size() * sizeof(float); }
};

// Packs ternary codes (-1, 0, +1; [rows, cols] row-major) into Ternary2 or Ternary1_6.
PackedMatrix pack_ternary(std::span<const int8_t> codes, int rows, int cols, float scale, PackedFormat format);
// Packs binary signs (+1 / -1) into Binary1.
PackedMatrix pack_binary(std::span<const int8_t> signs, int rows, int cols, float scale);
// Packs int8 codes (|code| <= 127) into Int8.
PackedMatrix pack_int8(std::span<const int8_t> codes, int rows, int cols, float scale);
PackedMatrix pack_f32(std::span<const float> values, int rows, int cols);
PackedMatrix pack_bf16(std::span<const float> values, int rows, int cols);  // rounds to nearest even

// The rows of `parts` (one quantized format, one width) stacked into one matrix, each part's
// per-tensor scale becoming its rows' row_scales: the runtime's fused q/k/v and gate/up projections,
// one pass over the shared activation and one thread-pool job instead of three or two.
bool can_stack_rows(std::span<const PackedMatrix* const> parts);
PackedMatrix stack_rows(std::span<const PackedMatrix* const> parts);

// The integer code of element (r, c) of a quantized matrix, read back from the packed bytes (the
// slow, obvious decoder: the scalar kernels and the tests use it).
int code_at(const PackedMatrix& m, int r, int c);
// Element (r, c) of an F32/BF16 matrix.
float value_at(const PackedMatrix& m, int r, int c);

// DESIGN.md "Numerics" quantizers on f32 master weights, producing codes and the per-tensor scale
// exactly as the training network's Hard phase does.
// The per-tensor ternary scale: DESIGN.md's mean|W| + 1e-5, or transformers' BitNet max(mean|W|, 1e-5)
// (model_type "bitnet": model::Architecture::BitNet, what its training network uses).
enum class TernaryScaleRule { MeanPlusEps, ClampedMean };
// Returns the scale (by `rule`); codes = clamp(round_half_even(W / scale), -1, 1).
float ternary_codes(std::span<const float> w, std::span<int8_t> codes,
                    TernaryScaleRule rule = TernaryScaleRule::MeanPlusEps);
float binary_signs(std::span<const float> w, std::span<int8_t> signs);   // returns mean|W - mean W|
float int8_codes(std::span<const float> w, std::span<int8_t> codes);     // returns max(max|W|,1e-5)/127
// An 8-bit LM head (opt-in, not the training numerics): per row absmax/127.
PackedMatrix pack_int8_rows(std::span<const float> values, int rows, int cols);
// Packs 6-bit codes (|code| <= 31) into Q6 with one per-tensor scale.
PackedMatrix pack_q6(std::span<const int8_t> codes, int rows, int cols, float scale);
// A 6-bit LM head (opt-in, not the training numerics): per row absmax/31, round half to even.
PackedMatrix pack_q6_rows(std::span<const float> values, int rows, int cols);

float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float x);  // round to nearest even

}  // namespace onebit::infer
