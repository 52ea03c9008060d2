#pragma once
// Prefill on the AMX matrix units (Intel Sapphire Rapids and later): TDPBSSD multiplies a 16 x 64
// tile of signed int8 by a 64 x 16 one into 16 x 16 int32 sums, 16x the multiply-adds of one 512-bit
// vpdpbusd. The integer sums are the same exact sums every other path computes, so the outputs are
// bitwise those of the avx512vnni path.
//
// Roles: the weights are the A operand (a tile row is 64 consecutive codes of one weight row, which is
// how every packed format decodes), the tokens the B operand, which AMX wants in the "VNNI" layout
// [k / 4][token][4]: pack_acts makes it once per matrix product (N x K bytes, small next to the
// weights), decode_rows turns 32 packed weight rows into signed codes, tile_gemm multiplies them with
// every token. The thread pool and the scaling stay in matmul.cpp: this file (compiled with the AMX
// and AVX-512 flags) holds plain functions on raw pointers only, so no inline library code compiled
// for those instructions can be picked by the linker for code that runs on other CPUs.
#include <cstddef>
#include <cstdint>

namespace onebit::infer::amx {

// The packed formats the decoder reads (the integer formats of packed_weights.h).
enum class Codes { Ternary2, Ternary1_6, Binary1, Int8, Q6 };

// Rows of weights per decode_rows / tile_gemm call, tokens per pass (two tiles of 16 each).
inline constexpr int kRows = 32;
inline constexpr int kTokens = 32;

// CPUID reports AMX-TILE and AMX-INT8, and Linux granted this process the tile data state
// (arch_prctl ARCH_REQ_XCOMP_PERM, asked once). False on other systems and in builds without the file.
bool usable();

// xv[(k / 4) * (npad * 4) + n * 4 + k % 4] = x[n * x_stride + k] for k < k64, n < N; tokens N..npad-1
// are zero. k64 and npad are multiples of 64 and of kTokens; x rows hold at least k64 bytes.
// Tokens [n0, n1) only (callers split the work).
void pack_acts(const int8_t* x, size_t x_stride, int N, int npad, int k64, int8_t* xv, int n0, int n1);

// dst[r * k64 + k] = signed value of code k of packed row r (r < nrows <= kRows; rows nrows..kRows-1 and
// codes past nblocks' codes up to k64 are zero). w: the first row, row_bytes apart.
void decode_rows(Codes f, const uint8_t* w, size_t row_bytes, int nblocks, int nrows, int k64, int8_t* dst);

// out[r * npad + n] = sum_k wdec[r * k64 + k] * x[n, k] for r < kRows, n < npad (xv from pack_acts).
void tile_gemm(const int8_t* wdec, int k64, const int8_t* xv, int npad, int32_t* out);

}  // namespace onebit::infer::amx
