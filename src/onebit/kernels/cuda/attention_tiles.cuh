#pragma once
// Shared pieces of the flash-attention kernels: 64-row tiles of [B,T,heads,hd] tensors staged in
// shared memory, and the bf16 WMMA fragment types (tensor cores, sm_80 and newer).
#include <mma.h>

#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda::attn {

namespace wmma = nvcuda::wmma;
constexpr int kTile = 64;     // query rows and key columns per tile
constexpr int kWarps = 4;     // each warp owns 16 rows of a 64-row tile
constexpr int kThreads = kWarps * 32;
constexpr float kLog2e = 1.4426950408889634f;

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
using FragAT = wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::col_major>;  // a transposed tile
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
using FragBT = wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major>;  // a transposed tile
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// Leading dimensions in shared memory, padded by 16 bytes against bank conflicts (WMMA needs
// multiples of 16 bytes).
template <int HD>
__host__ __device__ constexpr int ld_h() { return HD + 8; }
constexpr int kLdS = kTile + 4;  // f32 score tiles
constexpr int kLdP = kTile + 8;  // bf16 probability tiles

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

// S[16 rows of this warp][64] = A[warp rows][HD] · Bᵀ where B is a [64][HD] tile (both row-major,
// ld HD + 8), stored as f32 into S (ld kLdS).
template <int HD>
__device__ inline void warp_abt(float* S, const __nv_bfloat16* A, const __nv_bfloat16* Bm, int warp) {
  for (int n = 0; n < kTile / 16; ++n) {
    FragC acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int k = 0; k < HD / 16; ++k) {
      FragA a;
      FragBT b;
      wmma::load_matrix_sync(a, A + warp * 16 * ld_h<HD>() + k * 16, ld_h<HD>());
      wmma::load_matrix_sync(b, Bm + n * 16 * ld_h<HD>() + k * 16, ld_h<HD>());
      wmma::mma_sync(acc, a, b, acc);
    }
    wmma::store_matrix_sync(S + warp * 16 * kLdS + n * 16, acc, kLdS, wmma::mem_row_major);
  }
}

}  // namespace onebit::kernels::cuda::attn
