#pragma once
// The dK/dV pass of the v2 and v3 flash-attention backward (attention_v2_backward.cu,
// attention_v3_backward.cu): one block per 64-key tile streams every query tile at or after it. The
// v3 backward also writes each dS tile it computes (the only quantity the dQ pass needs), so its dQ
// pass is a plain product dQ = dS K instead of recomputing S, P and dP.
//
// Resources per block, from ptxas -v (sm_90, CUDA 13.0); H200 SM: 64K registers, 228 KB shared.
//   hd 64: 4 warps (64 keys) x 168 registers (20 B spilled; the two 16 x 64 f32 accumulators and Sᵀ,
//     dPᵀ are 128 of them), 56,320 B dynamic shared (K, V 64 x 72 + 2 stages x (Q, dO) 64 x 72 bf16 +
//     2 x 2 x 64 f32 row statistics) -> 3 blocks = 12 warps per SM (v1: 165 registers, 3 blocks). 8
//     warps of 128 keys would halve the Q/dO reloads but ptxas then takes 232 registers: one block
//     (8 warps) per SM, whose barriers nothing else overlaps.
//   hd 128: 4 warps x 255 registers (4 B spilled), 105,472 B -> 2 blocks = 8 warps per SM.
// With dropout the mask's hashing raises registers to 200-255 (hd 128 spills 124 B).
#include "onebit/kernels/cuda/attention_v2_tiles.cuh"

namespace onebit::kernels::cuda {
namespace {

using namespace attn2;

template <int HD>
using KvCfg = Cfg<HD, kKvWarps<HD>>;

// The packed dS layout of the v3 backward: per (b, h), the causal 64 x 64 tiles (query tile i, key
// tile j <= i) in order (0,0), (1,0), (1,1), (2,0), ..., each stored transposed as the dK/dV pass
// holds it: [64 keys][64 queries] bf16, 8 KB. Query tiles are the dK/dV pass's streamed tiles and key
// tiles its blocks, both 64 rows at hd 64 and 128.
constexpr int kDsTile = 64;
__host__ __device__ inline size_t ds_tiles_per_head(int T) {
  const size_t n = (size_t)(T + kDsTile - 1) / kDsTile;
  return n * (n + 1) / 2;
}
__host__ __device__ inline size_t ds_tile_offset(int b, int h, int i, int j, int H, int T) {
  return (((size_t)b * H + h) * ds_tiles_per_head(T) + (size_t)i * (i + 1) / 2 + j) * kDsTile * kDsTile;
}
// A warp's 16 key rows (warp * 16 + g, + 8) of a dSᵀ tile from its mma accumulators (dp[n][e]: key
// row g + 8 * (e >> 1), query column 8 n + 2 t + (e & 1)); dp = nullptr writes zeros.
__device__ inline void store_ds_rows(__nv_bfloat16* tile, const float (*dp)[4], int warp, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    __nv_bfloat16* row = tile + (size_t)(warp * 16 + g + 8 * r) * kDsTile + 2 * t;
#pragma unroll
    for (int n = 0; n < 8; ++n)
      *reinterpret_cast<uint32_t*>(row + n * 8) = dp ? pack_bf16(dp[n][2 * r], dp[n][2 * r + 1]) : 0u;
  }
}

template <int HD>
constexpr size_t dkdv_smem_bytes() {
  using C = KvCfg<HD>;
  return sizeof(__nv_bfloat16) * (size_t)(2 * C::kRows + 4 * C::kStream) * C::kLd +
         sizeof(float) * 4 * (size_t)C::kStream;
}

// Sᵀ and dPᵀ of a warp's key rows kj (w0..w0+15) against one 64-query tile (queries q0.., their
// natural-log lse cL and D cD in shared memory) -> P ∘ Z in p and dSᵀ = P ∘ (Z ∘ dP - D) / sqrt(hd) in
// dp, zero where a key follows the query or either is past T (only tiles that cross the diagonal or T
// test it: a select after the exponential, since a masked score may overflow it). drop_head =
// (b H + h) T indexes the dropout mask (Z = 1 without kDrop). This lane's query columns come in pairs
// (8 n + 2 t, + 1): one 8-byte shared load each of lse and D per pair, then per element an FFMA, an
// ex2, an FFMA and an FMUL.
template <bool kDrop, bool kMask>
__device__ inline void dkdv_probs_tile(float (&p)[8][4], float (&dp)[8][4], const float* cL, const float* cD, int q0,
                                       const int (&kj)[2], int T, uint64_t drop_head, float scale_log2, float scale,
                                       float p_drop, uint64_t seed, int t) {
#pragma unroll
  for (int n = 0; n < 8; ++n) {
    const float2 lv = *reinterpret_cast<const float2*>(cL + n * 8 + 2 * t);
    const float2 dv = *reinterpret_cast<const float2*>(cD + n * 8 + 2 * t);
    const float L2[2] = {lv.x * kLog2e, lv.y * kLog2e}, Ds[2] = {dv.x * scale, dv.y * scale};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int c = n * 8 + 2 * t + (e & 1), qi = q0 + c, key = kj[e >> 1];
      float pr = ex2(fmaf(p[n][e], scale_log2, -L2[e & 1]));
      if constexpr (kMask) pr = (key <= qi && qi < T && key < T) ? pr : 0.0f;
      if constexpr (kDrop) {
        const float z = dropout_factor(seed, (drop_head + qi) * T + key, p_drop);
        p[n][e] = pr * z;
        dp[n][e] = pr * fmaf(z * dp[n][e], scale, -Ds[e & 1]);  // dSᵀ
      } else {
        p[n][e] = pr;
        dp[n][e] = pr * fmaf(dp[n][e], scale, -Ds[e & 1]);  // dSᵀ
      }
    }
  }
}
template <bool kDrop>
__device__ inline void dkdv_probs(float (&p)[8][4], float (&dp)[8][4], const float* cL, const float* cD, int q0, int w0,
                                  const int (&kj)[2], int T, uint64_t drop_head, float scale_log2, float scale,
                                  float p_drop, uint64_t seed, int t) {
  if (q0 < w0 + 15 || q0 + 64 > T || w0 + 15 >= T)
    dkdv_probs_tile<kDrop, true>(p, dp, cL, cD, q0, kj, T, drop_head, scale_log2, scale, p_drop, seed, t);
  else
    dkdv_probs_tile<kDrop, false>(p, dp, cL, cD, q0, kj, T, drop_head, scale_log2, scale, p_drop, seed, t);
}

// One streamed tile's row statistics into shared memory: lse and D of queries q0..q0+63 of head h
// (rows past T: zeros), one 4-byte cp.async per row by the block's first 64 threads.
__device__ inline void cp_row_stats(float* sL, float* sD, const float* lse, const float* D, int b, int h, int q0, int T,
                                    int H) {
  if (threadIdx.x < 64) {
    const int qi = q0 + threadIdx.x;
    const bool ok = qi < T;
    const size_t at = ((size_t)b * H + h) * T + (ok ? qi : 0);
    cp_async4(sL + threadIdx.x, lse + at, ok);
    cp_async4(sD + threadIdx.x, D + at, ok);
  }
}

// The dK/dV pass's end for a warp's key rows kj: dK and dV rounded to bf16 (keys past T: nothing).
template <int HD>
__device__ inline void write_dkdv_rows(__nv_bfloat16* dk, __nv_bfloat16* dv, const float (&accK)[HD / 8][4],
                                       const float (&accV)[HD / 8][4], const int (&kj)[2], int b, int kh, int T, int KV,
                                       int t, int ld_dv) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (kj[r] >= T) continue;
    const size_t off = (((size_t)b * T + kj[r]) * KV + kh) * HD;
    const size_t voff = ((size_t)b * T + kj[r]) * ld_dv + (size_t)kh * HD;
#pragma unroll
    for (int n = 0; n < HD / 8; ++n) {
      *reinterpret_cast<__nv_bfloat162*>(dk + off + n * 8 + 2 * t) =
          __floats2bfloat162_rn(accK[n][2 * r], accK[n][2 * r + 1]);
      *reinterpret_cast<__nv_bfloat162*>(dv + voff + n * 8 + 2 * t) =
          __floats2bfloat162_rn(accV[n][2 * r], accV[n][2 * r + 1]);
    }
  }
}

// grid (key tiles of kRows, KV, batch rows b0..). For each head of the GQA group and each query tile at or after the
// block's first key: Sᵀ = K Qᵀ, dPᵀ = V dOᵀ, P = exp(S - lse), dS = P ∘ (Z ∘ dP - D) / sqrt(hd);
// dV += (P ∘ Z)ᵀ dO, dK += dSᵀ Q (Z: the dropout mask, 1 without kDrop).
// kStoreDs (the v3 backward): every dS tile is also written, rounded to bf16 as the dK product rounds
// it, to ds in ds_tile_offset's packed layout, for flash_dq_from_ds_kernel (attention_v3_backward.cu);
// tiles of keys past T are written as zeros, so the dQ pass never reads unwritten memory.
// Blocks per SM: 3 at hd 64 without dropout (at most 168 registers), else 2.
template <int HD, bool kDrop, bool kStoreDs>
__global__ void __launch_bounds__(KvCfg<HD>::kThreads, HD == 64 && !kDrop ? 3 : 2) flash_dkdv_v2_kernel(
    __nv_bfloat16* dk, __nv_bfloat16* dv, __nv_bfloat16* ds, const __nv_bfloat16* dout, const __nv_bfloat16* q,
    const __nv_bfloat16* k, const __nv_bfloat16* v, const float* lse, const float* D, int T, int H, int KV,
    float scale_log2, float scale, float p_drop, uint64_t seed, int b0, int ld_dv) {
  using C = KvCfg<HD>;
  constexpr int ld = C::kLd, BK = C::kRows, BQ = C::kStream, NT = C::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  auto* sK = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* sV = sK + BK * ld;
  __nv_bfloat16* sQ = sV + BK * ld;       // [2][BQ][ld]
  __nv_bfloat16* sdO = sQ + 2 * BQ * ld;  // [2][BQ][ld]
  auto* sL = reinterpret_cast<float*>(sdO + 2 * BQ * ld);  // [2][BQ] natural-log lse
  float* sD = sL + 2 * BQ;                                 // [2][BQ]
  // b0: the first batch row of this launch (the v3 backward runs the batch in chunks sized to its dS
  // buffer, indexed from 0 within a chunk; inputs, outputs and the dropout mask use the whole batch's b).
  const int j0 = blockIdx.x * BK, kh = blockIdx.y, b = b0 + blockIdx.z, group = H / KV;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const size_t q_stride = (size_t)H * HD, kv_stride = (size_t)KV * HD;
  // Query tiles per head: those at or after the block's first key (j0 is a multiple of BQ).
  const int per_head = (T - j0 + BQ - 1) / BQ, steps = group * per_head;
  auto load_step = [&](int step, int stage) {
    const int h = kh * group + step / per_head, q0 = j0 + (step % per_head) * BQ;
    cp_tile<HD, BQ, NT>(sQ + stage * BQ * ld, q + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
    cp_tile<HD, BQ, NT>(sdO + stage * BQ * ld, dout + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
    cp_row_stats(sL + stage * BQ, sD + stage * BQ, lse, D, b, h, q0, T, H);
  };
  cp_tile<HD, BK, NT>(sK, k + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
  cp_tile<HD, BK, NT>(sV, v + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
  load_step(0, 0);
  cp_async_commit();

  const int w0 = j0 + warp * 16;  // this warp's first key: rows of Sᵀ, dPᵀ and of dK, dV
  const int kj[2] = {w0 + g, w0 + g + 8};
  float accK[HD / 8][4], accV[HD / 8][4];
#pragma unroll
  for (int n = 0; n < HD / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) accK[n][e] = accV[n][e] = 0.0f;

  for (int step = 0; step < steps; ++step) {
    double_buffer_step(step, steps, load_step);
    __syncthreads();
    const int st = step & 1, h = kh * group + step / per_head, q0 = j0 + (step % per_head) * BQ;
    const __nv_bfloat16* cQ = sQ + st * BQ * ld;
    const __nv_bfloat16* cdO = sdO + st * BQ * ld;
    const float* cL = sL + st * BQ;
    const float* cD = sD + st * BQ;
    if (q0 + BQ - 1 >= w0 && w0 < T) {  // warp-uniform: some query of the tile sees some key of the warp
      float p[8][4], dp[8][4];
      mma_abt<HD>(p, sK + warp * 16 * ld, cQ, lane);    // Sᵀ = K Qᵀ
      mma_abt<HD>(dp, sV + warp * 16 * ld, cdO, lane);  // dPᵀ = V dOᵀ (before the mask)
      dkdv_probs<kDrop>(p, dp, cL, cD, q0, w0, kj, T, ((uint64_t)b * H + h) * T, scale_log2, scale, p_drop, seed, t);
      mma_pv<HD>(accV, p, cdO, lane);  // dV += (P ∘ Z)ᵀ dO
      mma_pv<HD>(accK, dp, cQ, lane);  // dK += dSᵀ Q
      if constexpr (kStoreDs) store_ds_rows(ds + ds_tile_offset(b - b0, h, q0 / BQ, blockIdx.x, H, T), dp, warp, lane);
    } else if constexpr (kStoreDs) {  // keys past T: their dS rows are zero
      store_ds_rows(ds + ds_tile_offset(b - b0, h, q0 / BQ, blockIdx.x, H, T), nullptr, warp, lane);
    }
    __syncthreads();  // stage st is refilled by the next iteration's load
  }
  write_dkdv_rows<HD>(dk, dv, accK, accV, kj, b, kh, T, KV, t, ld_dv);
}


}  // namespace
}  // namespace onebit::kernels::cuda
