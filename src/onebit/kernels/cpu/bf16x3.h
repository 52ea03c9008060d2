#pragma once
// bf16x3: an f32 value as the sum of three bf16 values, so that a bf16 matrix unit (AMX TDPBF16PS:
// bf16 x bf16 products, f32 accumulation) multiplies it by an operand that is exact in bf16 (ternary
// codes, int8 activation codes) to f32 rounding level.
//
//   h = bf16(a), m = bf16(a - h), l = bf16(a - h - m), each rounded to nearest even.
//
// a - h and a - h - m are exact in f32 (each is the rounding error of a rounding to fewer bits). Each
// part takes the next 8 significand bits plus, through the rounding's sign, one more, so for normal a the
// remainder after l is zero: h + m + l == a exactly as long as the parts stay normal, i.e. |a| >= 2^-103
// (l is a multiple of ulp(a) = 2^(e-23), normal for e - 23 >= -126). Below that the low parts are bf16
// subnormals (an f32 subnormal a even loses its bits under bf16's subnormal step 2^-133), and TDPBF16PS
// reads every denormal input as zero: the loss is below 2^-126 in absolute value per element, far under
// any gradient's rounding. A product part · b with |b| <= 128 an integer has at
// most 8 + 8 significand bits, so it is exact in f32; the only roundings are the f32 additions inside the
// tile unit, as in any other blocking of the same f32 GEMM.
// Non-finite a: h = a (inf stays inf, NaN stays a quiet NaN), m = l = 0, so inf and NaN propagate as in
// the f32 GEMM instead of turning into inf - inf = NaN parts. A finite a above the largest bf16 (whose
// nearest-even rounding would be inf) takes h = a truncated to bf16 instead, which keeps h + m + l == a.
//
// This header holds the scalar definition (tests and the vector code are checked against it) and the
// packed layouts the tile kernel reads (bf16x3_block.h) and the packers write (bf16x3_gemm.cpp).
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace onebit::kernels::cpu::bf16x3 {

// Output block of one tile-kernel call: 32 x 32 f32 (2 x 2 tiles of 16 x 16); K advances by 32 (one A
// tile row: 32 bf16 = 64 bytes; one B tile: 16 rows of K pairs).
inline constexpr int kBlock = 32;
inline constexpr int kParts = 3;

inline uint32_t f32_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
inline float bits_f32(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
inline float bf16_value(uint16_t b) { return bits_f32((uint32_t)b << 16); }

// bf16 bits of a: nearest even; where that would leave the finite range (a finite above the largest
// bf16) the truncation; inf as inf; NaN as a quiet NaN.
// From |a| >= 0x7f7f8000 (halfway between the largest bf16 and 2^128) nearest even gives inf.
inline uint16_t to_bf16_bits(float a) {
  const uint32_t u = f32_bits(a), mag = u & 0x7fffffffu;
  if (mag >= 0x7f7f8000u) return (uint16_t)((u >> 16) | (mag > 0x7f800000u ? 0x40u : 0u));
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

struct Split {
  uint16_t h = 0, m = 0, l = 0;
};
inline Split split(float a) {
  Split s;
  s.h = to_bf16_bits(a);
  if ((f32_bits(a) & 0x7f800000u) == 0x7f800000u) return s;  // inf, NaN: h alone
  const float r1 = a - bf16_value(s.h);
  s.m = to_bf16_bits(r1);
  s.l = to_bf16_bits(r1 - bf16_value(s.m));
  return s;
}

// Packed A (the split operand): per block of 32 rows, kParts x 32 rows x kpad bf16, kpad = K rounded up to
// 32; rows past M and k past K hold 0. Element (row r of the block, k, part p):
inline size_t a_index(int r, int k, int p, int kpad) { return ((size_t)p * kBlock + r) * kpad + k; }
inline size_t a_block_elems(int kpad) { return (size_t)kParts * kBlock * kpad; }
// Packed B (the exact operand), AMX's "VNNI" pair layout: per panel of 32 columns, [kpad/2][32][2] bf16,
// i.e. a 128-byte row per K pair holding both 16-column tiles; columns past N and k past K hold 0.
inline size_t b_index(int k, int c) { return ((size_t)(k / 2) * kBlock + c) * 2 + (k & 1); }
inline size_t b_panel_elems(int kpad) { return (size_t)kpad * kBlock; }
inline int kpad_of(int K) { return (K + kBlock - 1) / kBlock * kBlock; }

}  // namespace onebit::kernels::cpu::bf16x3
