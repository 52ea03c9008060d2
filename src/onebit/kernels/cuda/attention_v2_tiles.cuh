#pragma once
// Shared pieces of the v2 flash-attention kernels (attention_v2_forward.cu, attention_v2_backward.cu):
// the block shapes, asynchronous tile copies (cp.async, sm_80 and newer) into a double buffer, and
// ldmatrix fragment loads for the bf16 mma.sync.m16n8k16 of attention_tiles.cuh. Fragment layouts
// (PTX ISA, lane l = 4g + t): ldmatrix gives lane l row g, elements 2t and 2t+1 of each 8x8 matrix
// whose row addresses lanes 8m..8m+7 supply; with .trans, elements (2t, g) and (2t+1, g).
#include "onebit/kernels/cuda/async_copy.cuh"
#include "onebit/kernels/cuda/attention_tiles.cuh"

namespace onebit::kernels::cuda::attn2 {

using attn::kLog2e;
using attn::mma16816;
using attn::pack_bf16;

// A block shape: WARPS warps, each owning 16 rows of the block's fixed tile (queries in the forward
// and dQ kernels, keys in the dK/dV kernel), and 64-row tiles streamed through a double buffer.
template <int HD, int WARPS>
struct Cfg {
  static constexpr int kWarps = WARPS;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kRows = 16 * kWarps;  // fixed rows per block
  static constexpr int kStream = 64;         // rows per streamed tile
  static constexpr int kLd = HD + 8;         // padded row stride (elements): conflict-free ldmatrix
};
// Warps per block of each kernel, chosen from the registers ptxas assigns (sm_90, CUDA 13.0; numbers
// in the kernel files) for the occupancy they allow. hd 64: the forward and dQ kernels fit 128
// registers, so 8 warps x 2 blocks per SM; the dK/dV kernel needs ~170 (two f32 accumulators of
// 16 x 64 plus Sᵀ and dPᵀ), so 4 warps x 3 blocks per SM. hd 128: 4 warps everywhere (twice the
// accumulators; 8 warps would need up to 139 KB of shared memory and one block per SM).
template <int HD>
inline constexpr int kFwdWarps = HD == 64 ? 8 : 4;
template <int HD>
inline constexpr int kDqWarps = HD == 64 ? 8 : 4;
template <int HD>
inline constexpr int kKvWarps = 4;

// The asynchronous copies (async_copy.cuh), under the names the attention kernels use.
using cuda::cp_async16;
using cuda::cp_async4;
using cuda::cp_async_commit;
using cuda::cp_async_wait;

// Starts copying rows [row0, row0 + ROWS) of one head (row stride `stride` elements) into
// dst[ROWS][HD + 8]; rows past T become zeros. Every thread of the block (NT of them) takes part.
template <int HD, int ROWS, int NT>
__device__ inline void cp_tile(__nv_bfloat16* dst, const __nv_bfloat16* src, int row0, int T, size_t stride) {
  constexpr int kVecs = HD / 8, kLd = HD + 8;
  static_assert((ROWS * kVecs) % NT == 0, "tile copy: threads must divide the 16-byte vectors");
#pragma unroll
  for (int i = 0; i < ROWS * kVecs / NT; ++i) {
    const int idx = threadIdx.x + i * NT, r = idx / kVecs, c = (idx % kVecs) * 8;
    const bool ok = row0 + r < T;
    cp_async16(dst + r * kLd + c, src + (size_t)(ok ? row0 + r : 0) * stride + c, ok);
  }
}

// One step of a two-stage cp.async pipeline over `count` streamed tiles: starts loading tile j + 1 into
// the other stage (free since the barrier that ended iteration j - 1) with load(j + 1, stage), and
// waits until everything but that tile has landed (at the last tile: everything). The caller's barrier
// follows.
template <class Load>
__device__ inline void double_buffer_step(int j, int count, Load&& load) {
  if (j + 1 < count) {
    load(j + 1, (j + 1) & 1);
    cp_async_commit();
    cp_async_wait<1>();
  } else {
    cp_async_wait<0>();
  }
}

__device__ inline void ldsm_x4(uint32_t r[4], const __nv_bfloat16* p) {
  const unsigned a = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ inline void ldsm_x4_trans(uint32_t r[4], const __nv_bfloat16* p) {
  const unsigned a = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

// The A fragment (16 rows x 16 columns at column k0) of a row-major staged tile whose first row is
// `rows`: matrices (rows 0-7, cols 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15) = a[0..3].
template <int HD>
__device__ inline void load_a(uint32_t a[4], const __nv_bfloat16* rows, int k0, int lane) {
  ldsm_x4(a, rows + (lane & 15) * (HD + 8) + k0 + (lane >> 4) * 8);
}

// acc[n] (16 x 8, n = 0..7: 16 rows x 64 columns) = A (16 x HD rows at `a_rows`) · Bᵀ with B the 64
// staged rows at `b_rows` (S = Q Kᵀ, dP = dO Vᵀ and their transposes). One ldmatrix.x4 gives the b
// fragments of two 8-row blocks of B: (rows 0-7, k 0-7), (0-7, 8-15), (8-15, 0-7), (8-15, 8-15).
template <int HD>
__device__ inline void mma_abt(float acc[8][4], const __nv_bfloat16* a_rows, const __nv_bfloat16* b_rows, int lane) {
  constexpr int ld = HD + 8;
#pragma unroll
  for (int n = 0; n < 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < HD / 16; ++kk) {
    uint32_t a[4];
    load_a<HD>(a, a_rows, kk * 16, lane);
#pragma unroll
    for (int np = 0; np < 4; ++np) {
      uint32_t b[4];
      ldsm_x4(b, b_rows + (np * 16 + (lane >> 4) * 8 + (lane & 7)) * ld + kk * 16 + ((lane >> 3) & 1) * 8);
      mma16816(acc[2 * np], a, b[0], b[1]);
      mma16816(acc[2 * np + 1], a, b[2], b[3]);
    }
  }
}

// acc (16 x HD) += P (16 x 64 f32 score accumulators, rounded to bf16 as the A operand: blocks 2kk and
// 2kk+1 form the A fragment of columns kk*16..kk*16+15) · the 64 staged rows at `b_rows` (64 x HD,
// row-major, so loaded transposed: (k 0-7, n 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15)).
// acc (16 x HD) += A (one 16 x 16 A fragment) · the 16 staged rows at `k16_rows` (16 x HD, row-major,
// stride HD + 8, loaded transposed: (k 0-7, n 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15)).
template <int HD>
__device__ inline void mma_a_rows(float acc[HD / 8][4], const uint32_t a[4], const __nv_bfloat16* k16_rows, int lane) {
  const __nv_bfloat16* rows = k16_rows + (lane & 15) * (HD + 8) + (lane >> 4) * 8;
#pragma unroll
  for (int np = 0; np < HD / 16; ++np) {
    uint32_t b[4];
    ldsm_x4_trans(b, rows + np * 16);
    mma16816(acc[2 * np], a, b[0], b[1]);
    mma16816(acc[2 * np + 1], a, b[2], b[3]);
  }
}

template <int HD>
__device__ inline void mma_pv(float acc[HD / 8][4], const float p[8][4], const __nv_bfloat16* b_rows, int lane) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    const uint32_t pa[4] = {pack_bf16(p[2 * kk][0], p[2 * kk][1]), pack_bf16(p[2 * kk][2], p[2 * kk][3]),
                            pack_bf16(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                            pack_bf16(p[2 * kk + 1][2], p[2 * kk + 1][3])};
    mma_a_rows<HD>(acc, pa, b_rows + kk * 16 * (HD + 8), lane);
  }
}

// 2^x on the special-function unit alone (ex2.approx.ftz: relative error ~2^-22, results below 2^-126
// flushed to 0): exp2f without fast-math adds a scaling sequence for subnormal results that the
// probabilities do not need. ex2(-inf) = 0.
__device__ inline float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// The scores half of one key tile (keys j0..j0 + 8 NB - 1) of the forward's online softmax for a warp's
// rows w0..w0+15 (this lane: qi[0], qi[1]): masks keys after the row or past T where the tile crosses
// them, updates the running max m (base 2, scaled) and this lane's share of the normaliser l, returns in
// alpha the factor the output accumulator must be rescaled by, and leaves P (times the dropout mask with
// kDrop; l stays that of the undropped probabilities) in s for the P·V product. The max is taken over the
// raw scores and each probability is one FFMA and one ex2 (FlashAttention-2's arrangement); tiles that
// cross nothing skip the mask. A warp whose rows all precede the tile (possible in the wgmma kernels,
// whose warpgroups compute such tiles) gets P = 0 and m, l unchanged (alpha 1).
template <int NB, bool kDrop>
__device__ inline void online_softmax_scores(float (&s)[NB][4], float (&m)[2], float (&l)[2], float (&alpha)[2], int j0,
                                             int w0, const int (&qi)[2], int T, float scale_log2,
                                             const uint64_t (&drop_row)[2], float p_drop, uint64_t seed, int t) {
  if (j0 + 8 * NB - 1 > w0 || j0 + 8 * NB > T) {  // the tile crosses the diagonal or T
#pragma unroll
    for (int n = 0; n < NB; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int kj = j0 + n * 8 + 2 * t + (e & 1);
        if (!(kj <= qi[e >> 1] && kj < T)) s[n][e] = -INFINITY;
      }
  }
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int n = 0; n < NB; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) mx[e >> 1] = fmaxf(mx[e >> 1], s[n][e]);
  float base[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    const float m_new = fmaxf(m[r], mx[r] * scale_log2);
    base[r] = m_new == -INFINITY ? 0.0f : m_new;  // a row with no live key yet keeps p = 0
    alpha[r] = ex2(m[r] - base[r]);
    m[r] = m_new;
    l[r] *= alpha[r];
  }
#pragma unroll
  for (int n = 0; n < NB; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = e >> 1;
      s[n][e] = ex2(fmaf(s[n][e], scale_log2, -base[r]));
      l[r] += s[n][e];  // the normaliser is that of the undropped probabilities
      if constexpr (kDrop)
        s[n][e] *= dropout_factor(seed, drop_row[r] + (uint64_t)(j0 + n * 8 + 2 * t + (e & 1)), p_drop);
    }
}

// One 64-key tile of the forward's online softmax (online_softmax_scores) with the output accumulator acc
// rescaled in place: the mma.sync kernels, whose P·V product has finished when the next tile's runs.
template <int HD, bool kDrop>
__device__ inline void online_softmax_step(float (&s)[8][4], float (&acc)[HD / 8][4], float (&m)[2], float (&l)[2],
                                           int j0, int w0, const int (&qi)[2], int T, float scale_log2,
                                           const uint64_t (&drop_row)[2], float p_drop, uint64_t seed, int t) {
  float alpha[2];
  online_softmax_scores<8, kDrop>(s, m, l, alpha, j0, w0, qi, T, scale_log2, drop_row, p_drop, seed, t);
#pragma unroll
  for (int n = 0; n < HD / 8; ++n) {
    acc[n][0] *= alpha[0];
    acc[n][1] *= alpha[0];
    acc[n][2] *= alpha[1];
    acc[n][3] *= alpha[1];
  }
}

// One 64-key tile (keys j0..j0+63) of the dQ pass for a warp's rows w0..w0+15 (this lane: qi[0], qi[1], their
// lse in base 2 L2 and D times the scale Ds): from S in s and dP in ds, leaves dS = P ∘ (Z ∘ dP - D) / sqrt(hd)
// in ds, zero where a key follows the row or either is past T. Each element an FFMA, an ex2 and an FFMA and
// FMUL; only tiles that cross the diagonal or T mask (a select after the exponential: a masked score may
// overflow it).
template <bool kDrop, bool kMask>
__device__ inline void dq_probs_tile(const float (&s)[8][4], float (&ds)[8][4], int j0, const int (&qi)[2], int T,
                                     const float (&L2)[2], const float (&Ds)[2], float scale_log2, float scale,
                                     const uint64_t (&drop_row)[2], float p_drop, uint64_t seed, int t) {
#pragma unroll
  for (int n = 0; n < 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = e >> 1, key = j0 + n * 8 + 2 * t + (e & 1);
      float pr = ex2(fmaf(s[n][e], scale_log2, -L2[r]));
      if constexpr (kMask) pr = (key <= qi[r] && qi[r] < T && key < T) ? pr : 0.0f;
      if constexpr (kDrop) {
        const float z = dropout_factor(seed, drop_row[r] + (uint64_t)key, p_drop);
        ds[n][e] = pr * fmaf(z * ds[n][e], scale, -Ds[r]);
      } else {
        ds[n][e] = pr * fmaf(ds[n][e], scale, -Ds[r]);
      }
    }
}
template <bool kDrop>
__device__ inline void dq_probs(const float (&s)[8][4], float (&ds)[8][4], int j0, int w0, const int (&qi)[2], int T,
                                const float (&L2)[2], const float (&Ds)[2], float scale_log2, float scale,
                                const uint64_t (&drop_row)[2], float p_drop, uint64_t seed, int t) {
  if (j0 + 63 > w0 || j0 + 64 > T)
    dq_probs_tile<kDrop, true>(s, ds, j0, qi, T, L2, Ds, scale_log2, scale, drop_row, p_drop, seed, t);
  else
    dq_probs_tile<kDrop, false>(s, ds, j0, qi, T, L2, Ds, scale_log2, scale, drop_row, p_drop, seed, t);
}

// The forward's end for a warp's rows (this lane: qi[0], qi[1]): the normaliser summed over the four
// lanes of each row, O = acc / l rounded to bf16, and the natural-log lse (row past T: nothing).
template <int HD>
__device__ inline void write_forward_rows(__nv_bfloat16* o, float* lse, const float (&acc)[HD / 8][4],
                                          const float (&m)[2], float (&l)[2], const int (&qi)[2], int b, int h, int T,
                                          int H, int t) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (qi[r] >= T) continue;
    const float inv = 1.0f / l[r];
    __nv_bfloat16* orow = o + (((size_t)b * T + qi[r]) * H + h) * HD;
#pragma unroll
    for (int n = 0; n < HD / 8; ++n)
      *reinterpret_cast<__nv_bfloat162*>(orow + n * 8 + 2 * t) =
          __floats2bfloat162_rn(acc[n][2 * r] * inv, acc[n][2 * r + 1] * inv);
    if (t == 0) lse[((size_t)b * H + h) * T + qi[r]] = (m[r] + log2f(l[r])) * 0.6931471805599453f;
  }
}

}  // namespace onebit::kernels::cuda::attn2
