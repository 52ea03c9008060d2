#pragma once
// Shared pieces of the flash-attention kernels: 64-row tiles of [B,T,heads,hd] tensors staged in
// shared memory, and the bf16 tensor-core instruction mma.sync.m16n8k16 (sm_80 and newer) with the
// fragment layouts the PTX ISA documents, so scores and accumulators can live in registers.
#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda::attn {

constexpr int kTile = 64;     // query rows and key rows per tile
constexpr int kWarps = 4;     // each warp owns 16 rows of a 64-row tile
constexpr int kThreads = kWarps * 32;
constexpr float kLog2e = 1.4426950408889634f;

// Row stride of a staged tile in elements, padded by 16 bytes: the 32-bit fragment loads of the 8
// rows x 4 lanes of a warp then hit 32 different banks, and rows stay 16-byte aligned for ldmatrix.
template <int HD>
__host__ __device__ constexpr int ld_h() { return HD + 8; }

// Copies rows [row0, row0 + 64) of one head (stride between rows: row_stride elements) into
// dst[64][HD + 8]; rows past T are zero. 16-byte vector copies (HD is a multiple of 8).
template <int HD>
__device__ inline void load_tile(__nv_bfloat16* dst, const __nv_bfloat16* src, int row0, int T, size_t row_stride) {
  constexpr int kVecs = HD / 8;
  for (int idx = threadIdx.x; idx < kTile * kVecs; idx += blockDim.x) {
    const int r = idx / kVecs, c = (idx % kVecs) * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (row0 + r < T) val = *reinterpret_cast<const uint4*>(src + (size_t)(row0 + r) * row_stride + c);
    *reinterpret_cast<uint4*>(dst + r * ld_h<HD>() + c) = val;
  }
}

// c (16x8 f32) += a (16x16 bf16, row-major) * b (16x8 bf16, column-major).
// Lane l = 4g + t holds a: {(g, 2t..2t+1), (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..)}; b: {(2t..2t+1, g),
// (2t+8.., g)}; c: {(g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1)} (row, column).
__device__ inline void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ inline uint32_t ld32(const __nv_bfloat16* p) { return *reinterpret_cast<const uint32_t*>(p); }

__device__ inline uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// A fragment (16 rows x 16 columns starting at column k0) of a row-major staged tile whose first
// row is `rows`.
template <int HD>
__device__ inline void load_a(uint32_t a[4], const __nv_bfloat16* rows, int k0, int g, int t) {
  constexpr int ld = ld_h<HD>();
  a[0] = ld32(rows + g * ld + k0 + 2 * t);
  a[1] = ld32(rows + (g + 8) * ld + k0 + 2 * t);
  a[2] = ld32(rows + g * ld + k0 + 2 * t + 8);
  a[3] = ld32(rows + (g + 8) * ld + k0 + 2 * t + 8);
}

// acc[n] (16 x 8 for n = 0..7, i.e. 16 x 64) = A (16 x HD, row-major at `a_rows`) · Bᵀ, B the 64
// staged rows at `b_rows` (so b fragments are 32-bit loads along B's rows).
template <int HD>
__device__ inline void mma_abt(float acc[kTile / 8][4], const __nv_bfloat16* a_rows, const __nv_bfloat16* b_rows,
                               int g, int t) {
  constexpr int ld = ld_h<HD>();
  for (int n = 0; n < kTile / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  for (int kk = 0; kk < HD / 16; ++kk) {
    uint32_t a[4];
    load_a<HD>(a, a_rows, kk * 16, g, t);
    for (int n = 0; n < kTile / 8; ++n) {
      const __nv_bfloat16* br = b_rows + (n * 8 + g) * ld + kk * 16 + 2 * t;
      mma16816(acc[n], a, ld32(br), ld32(br + 8));
    }
  }
}

// The B operand (16 rows k0.. x 8 columns n0..) of a product with a row-major staged tile as the
// right-hand matrix: two 8x8 matrices loaded transposed. row_ptr = &tile[(k0 + (lane & 15)) * ld + n0].
__device__ inline void ldmatrix_x2_trans(uint32_t& b0, uint32_t& b1, const __nv_bfloat16* row_ptr) {
  const unsigned addr = (unsigned)__cvta_generic_to_shared(row_ptr);
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(b0), "=r"(b1) : "r"(addr));
}

// acc (16 x HD) += P (16 x 64, the f32 accumulators of a score product, rounded to bf16 as the A
// operand: key blocks 2kk and 2kk+1 form the A fragment of columns kk*16..kk*16+15) · the 64 staged
// rows at `b_rows` (64 x HD).
template <int HD>
__device__ inline void mma_pv(float acc[HD / 8][4], const float p[kTile / 8][4], const __nv_bfloat16* b_rows,
                              int lane) {
  constexpr int ld = ld_h<HD>();
  for (int kk = 0; kk < kTile / 16; ++kk) {
    const uint32_t pa[4] = {pack_bf16(p[2 * kk][0], p[2 * kk][1]), pack_bf16(p[2 * kk][2], p[2 * kk][3]),
                            pack_bf16(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                            pack_bf16(p[2 * kk + 1][2], p[2 * kk + 1][3])};
    const __nv_bfloat16* vr = b_rows + (kk * 16 + (lane & 15)) * ld;
    for (int n = 0; n < HD / 8; ++n) {
      uint32_t b0, b1;
      ldmatrix_x2_trans(b0, b1, vr + n * 8);
      mma16816(acc[n], pa, b0, b1);
    }
  }
}

}  // namespace onebit::kernels::cuda::attn
