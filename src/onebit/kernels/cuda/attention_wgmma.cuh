#pragma once
// Hopper warpgroup MMA (wgmma, sm_90a) for the v3 flash-attention kernels at head_dim 64
// (attention_v3_forward.cu, attention_v3_backward.cu). A warpgroup (4 consecutive warps, 128 threads)
// multiplies a 64-row tile: A from shared memory or registers, B from shared memory, read once per
// warpgroup instead of once per warp as mma.sync's ldmatrix fragments are (4x less shared-memory
// traffic for the streamed operand, and the products run asynchronously on Hopper's full-rate path).
//
// Layouts (PTX ISA, wgmma): the f32 accumulator of m64nNk16 gives warp w of the warpgroup rows
// 16w..16w+15 in mma.m16n8k16's per-warp pattern (d[4i + e]: row g + 8 (e >> 1), column 8i + 2t + (e & 1)
// with lane = 4g + t), and an A operand in registers is mma.m16n8k16's A fragment per warp; so the
// kernels' per-warp softmax and dS code is the mma.sync kernels' unchanged. Shared-memory operands use
// the no-swizzle canonical layout: 8 x 8 "core matrices" of 8 rows x 16 bytes, 128 contiguous bytes
// each; a descriptor names the start, the byte stride between core matrices along K (LBO) and along
// M/N (SBO). A tile of R rows x 64 bf16 stored core matrix by core matrix (core_offset) serves as a
// K-major operand (rows = M or N, the 64 columns = K: LBO 128 B, SBO 1024 B) and, for the P·V-type
// products, as a transposed ("MN-major") B operand (rows = K, columns = N: LBO 1024 B, SBO 128 B).
#include <cstdint>

#include "onebit/kernels/cuda/attention_v2_tiles.cuh"
#include "onebit/kernels/cuda/wgmma.cuh"

namespace onebit::kernels::cuda::wg {

// Element offset of (r, c) in a tile of 64-column rows stored core matrix by core matrix.
__device__ inline int core_offset(int r, int c) { return ((r >> 3) * 8 + (c >> 3)) * 64 + (r & 7) * 8 + (c & 7); }

// Starts copying rows [row0, row0 + ROWS) x 64 bf16 (row stride `stride` elements) into `dst` in the
// core-matrix layout; rows past T become zeros. Consecutive lanes take consecutive rows of one core
// matrix, so each 8 lanes write 128 contiguous bytes (no bank conflicts) and each 16 lanes read two
// 16-byte halves of the same 32-byte sectors.
template <int ROWS, int NT>
__device__ inline void cp_tile_core(__nv_bfloat16* dst, const __nv_bfloat16* src, int row0, int T, size_t stride) {
  static_assert((ROWS * 8) % NT == 0 && ROWS % 8 == 0, "core tile copy: threads must divide the 16-byte vectors");
#pragma unroll
  for (int i = 0; i < ROWS * 8 / NT; ++i) {
    const int idx = threadIdx.x + i * NT, r = (idx & 7) + 8 * (idx >> 6), c = ((idx >> 3) & 7) * 8;
    const bool ok = row0 + r < T;
    attn2::cp_async16(dst + core_offset(r, c), src + (size_t)(ok ? row0 + r : 0) * stride + c, ok);
  }
}

// Byte strides of the two roles of a core-matrix tile of 64-column rows (see the header comment).
constexpr uint32_t kKMajorLbo = 128, kKMajorSbo = 1024;  // rows = M/N, columns = K
constexpr uint32_t kMnMajorLbo = 1024, kMnMajorSbo = 128;  // rows = K, columns = N (transposed B)

#if ONEBIT_WGMMA
#define ONEBIT_WG_D32                                                                                       \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), \
      "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),  \
      "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), \
      "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define ONEBIT_WG_REGS32                                                                                      \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31}"

// d (64 x 64 f32, this thread's 32) = (accumulate ? d : 0) + A · Bᵀ for one k16 step: A 64 x 16 and B
// 64 x 16, both K-major in shared memory.
__device__ inline void mma_ss(float* d, uint64_t da, uint64_t db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " ONEBIT_WG_REGS32 ", %32, %33, p, 1, 1, 0, 0;\n}\n"
      : ONEBIT_WG_D32
      : "l"(da), "l"(db), "r"(accumulate));
}
// d += A · B for one k16 step: A (64 x 16) in registers (mma.m16n8k16's A fragment per warp), B 16 x 64
// MN-major in shared memory (rows = K).
__device__ inline void mma_rs(float* d, const uint32_t a[4], uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " ONEBIT_WG_REGS32
      ", {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      : ONEBIT_WG_D32
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}
#undef ONEBIT_WG_D32
#undef ONEBIT_WG_REGS32
#else
__device__ inline void mma_ss(float*, uint64_t, uint64_t, int) { __trap(); }
__device__ inline void mma_rs(float*, const uint32_t*, uint64_t) { __trap(); }
#endif

// S-type product of a warpgroup: d (64 x 64) = A · Bᵀ over K = 64, A and B 64-row core-matrix tiles.
__device__ inline void mma_abt64(float* d, const __nv_bfloat16* a_tile, const __nv_bfloat16* b_tile) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk)
    mma_ss(d, desc(a_tile + kk * 128, kKMajorLbo, kKMajorSbo), desc(b_tile + kk * 128, kKMajorLbo, kKMajorSbo),
           kk > 0);  // columns 16 kk.. = core-matrix columns 2 kk, 2 kk + 1 (64 elements each)
}
// P·V-type product: d (64 x 64) += P · B with P 64 x 64 in this thread's accumulator registers (p[n][e]
// as mma.sync holds it; rounded to bf16) and B a 64-row core-matrix tile whose rows are K.
__device__ inline void mma_pv64(float* d, const float (*p)[4], const __nv_bfloat16* b_tile) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    const uint32_t a[4] = {attn2::pack_bf16(p[2 * kk][0], p[2 * kk][1]), attn2::pack_bf16(p[2 * kk][2], p[2 * kk][3]),
                           attn2::pack_bf16(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                           attn2::pack_bf16(p[2 * kk + 1][2], p[2 * kk + 1][3])};
    mma_rs(d, a, desc(b_tile + kk * 1024, kMnMajorLbo, kMnMajorSbo));  // rows 16 kk.. = core rows 2 kk, 2 kk + 1
  }
}

// The TMA-fed kernels' forms (attention_v4_*.cu): tiles of 64-element (128-byte) rows in the 128-byte
// swizzle, 1024-byte aligned (wgmma.cuh's sw128 descriptors).
// d (64 x 64) = A · Bᵀ over K = 64: A and B 64-row K-major tiles (S = Q Kᵀ and its relatives).
__device__ inline void mma_abt64_sw128(float (&d)[8][4], const void* a_tile, const void* b_tile) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) mma_ss(&d[0][0], sw128_kmajor_desc(a_tile, kk), sw128_kmajor_desc(b_tile, kk), kk > 0);
}
// d (64 x 64) += A · B over K = 16 K16: A in registers (pack_a), B the first 16 K16 rows of an MN-major tile
// (rows = K: P·V and its relatives).
template <int K16>
__device__ inline void mma_ab64_sw128(float (&d)[8][4], const uint32_t (&a)[K16][4], const void* b_tile) {
#pragma unroll
  for (int kk = 0; kk < K16; ++kk) mma_rs(&d[0][0], a[kk], sw128_mnmajor_desc(b_tile, kk));
}
// An accumulator tile (d[n][e], n the 8-column groups) rounded to bf16 as the A fragments of the K16 k16
// steps of a product over its columns.
template <int K16>
__device__ inline void pack_a(uint32_t (&a)[K16][4], const float (&d)[2 * K16][4]) {
#pragma unroll
  for (int kk = 0; kk < K16; ++kk) {
    a[kk][0] = attn2::pack_bf16(d[2 * kk][0], d[2 * kk][1]);
    a[kk][1] = attn2::pack_bf16(d[2 * kk][2], d[2 * kk][3]);
    a[kk][2] = attn2::pack_bf16(d[2 * kk + 1][0], d[2 * kk + 1][1]);
    a[kk][3] = attn2::pack_bf16(d[2 * kk + 1][2], d[2 * kk + 1][3]);
  }
}

}  // namespace onebit::kernels::cuda::wg
