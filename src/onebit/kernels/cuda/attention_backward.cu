// Flash attention backward, FlashAttention-2 style (probabilities recomputed tile by tile from the
// saved log-sum-exp) and deterministic: no atomics. Pass 1 (one block per key tile and KV head) loops
// over the query tiles of every head in the GQA group and accumulates dK, dV in registers; pass 2
// (one block per query tile and head) loops over key tiles and accumulates dQ. Both recompute
// P = exp(S - lse) and dS = P (dP - D) / sqrt(hd) with D = rowsum(dO · O), on bf16 tensor cores
// (mma.sync) with every score tile in registers; each warp owns 16 rows of the block's tile.
// Attention dropout (kDrop): with Z the forward's mask, dP = Z ∘ (dO Vᵀ), dV += (P ∘ Z)ᵀ dO and D =
// rowsum(dO ∘ O) = rowsum(P ∘ dP) as before (FlashAttention-2's derivation with dropout).
// These are the v1 kernels (ONEBIT_CUDA_ATTENTION=v1); attention_v2_backward.cu holds the default, and
// both take D from the delta kernel here (v3: attention_v3_backward.cu).
#include <algorithm>

#include "onebit/kernels/cuda/attention_generic.cuh"
#include "onebit/kernels/cuda/attention_tiles.cuh"
#include "onebit/kernels/cuda/attention_v2.cuh"
#include "onebit/kernels/cuda/attention_v3.cuh"

namespace onebit::kernels::cuda {
namespace {

using namespace attn;

// D[b,h,t] = sum_i dO[b,t,h,i] O[b,t,h,i] (f32); one warp per row (head sizes that are not 8 x a power of two).
__global__ void attention_delta_kernel(float* D, const __nv_bfloat16* dout, const __nv_bfloat16* o, int T, int H,
                                       int hd, size_t rows) {
  const size_t row = blockIdx.x * (size_t)(blockDim.x / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;  // row = (b*T + t)*H + h
  float acc = 0.0f;
  for (int i = lane; i < hd; i += 32) acc += __bfloat162float(dout[row * hd + i]) * __bfloat162float(o[row * hd + i]);
  acc = warp_sum(acc);
  if (lane == 0) {
    const size_t h = row % H, bt = row / H, t = bt % T, b = bt / T;
    D[(b * H + h) * T + t] = acc;
  }
}

// The same for hd = 8 G (G a power of two <= 32) with 16-byte aligned rows: a group of G lanes per row, one 16-byte
// load of each operand a lane, so a warp reads 1 KB a step. (The warp-per-row kernel read two bf16 a lane and moved
// ~1.2 TB/s: 47 us of a 125m layer's backward, 0.55 ms a step.) Every lane reaches the shuffles.
__global__ void attention_delta_vec_kernel(float* D, const __nv_bfloat16* dout, const __nv_bfloat16* o, int T, int H,
                                           int G, size_t rows) {
  const size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = gid / G;
  const int gl = (int)(gid % G);
  float acc = 0.0f;
  if (row < rows) {
    float a[8], b[8];
    load8(a, dout + (row * G + gl) * 8);
    load8(b, o + (row * G + gl) * 8);
#pragma unroll
    for (int e = 0; e < 8; ++e) acc += a[e] * b[e];
  }
  for (int off = G / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (row < rows && gl == 0) {
    const size_t h = row % H, bt = row / H, t = bt % T, b = bt / T;
    D[(b * H + h) * T + t] = acc;
  }
}

void launch_attention_delta(cudaStream_t st, float* D, const __nv_bfloat16* dout, const __nv_bfloat16* o, int T, int H,
                            int hd, size_t rows) {
  const int G = hd / 8;
  if (hd % 8 == 0 && G <= 32 && (G & (G - 1)) == 0 && aligned16(dout) && aligned16(o)) {
    attention_delta_vec_kernel<<<(unsigned)((rows * G + 255) / 256), 256, 0, st>>>(D, dout, o, T, H, G, rows);
  } else {
    attention_delta_kernel<<<(unsigned)((rows + 7) / 8), 256, 0, st>>>(D, dout, o, T, H, hd, rows);
  }
}

// Four staged tiles (two fixed for the block, two streamed) and the 64 rows' lse (base 2) and D.
template <int HD>
constexpr size_t smem_bytes() {
  return 4 * sizeof(__nv_bfloat16) * kTile * ld_h<HD>() + 2 * sizeof(float) * kTile;
}

// Loads lse (converted to base 2) and D of query rows q0..q0+63 (zero past T).
__device__ inline void load_row_stats(float* sLse, float* sD, const float* lse, const float* D, size_t base, int q0,
                                      int T) {
  if (threadIdx.x < kTile) {
    const int qi = q0 + threadIdx.x;
    sLse[threadIdx.x] = qi < T ? lse[base + qi] * kLog2e : 0.0f;
    sD[threadIdx.x] = qi < T ? D[base + qi] : 0.0f;
  }
}

template <int HD, bool kDrop>
__global__ void __launch_bounds__(kThreads) flash_dkdv_kernel(__nv_bfloat16* dk, __nv_bfloat16* dv,
                                                              const __nv_bfloat16* dout, const __nv_bfloat16* q,
                                                              const __nv_bfloat16* k, const __nv_bfloat16* v,
                                                              const float* lse, const float* D, int T, int H, int KV,
                                                              float scale_log2, float scale, float p_drop,
                                                              uint64_t seed, int ld_dv) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr int ld = ld_h<HD>();
  auto* sK = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* sV = sK + kTile * ld;
  __nv_bfloat16* sQ = sV + kTile * ld;
  __nv_bfloat16* sdO = sQ + kTile * ld;
  auto* sLse = reinterpret_cast<float*>(sdO + kTile * ld);
  float* sD = sLse + kTile;
  const int j0 = blockIdx.x * kTile, kh = blockIdx.y, b = blockIdx.z, group = H / KV;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const size_t q_stride = (size_t)H * HD, kv_stride = (size_t)KV * HD;
  load_tile<HD>(sK, k + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
  load_tile<HD>(sV, v + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
  // This warp's 16 keys: rows of Sᵀ, dPᵀ (keys x queries) and of dK, dV.
  const int kj[2] = {j0 + warp * 16 + g, j0 + warp * 16 + g + 8};
  float accK[HD / 8][4], accV[HD / 8][4];
  for (int n = 0; n < HD / 8; ++n)
    for (int e = 0; e < 4; ++e) accK[n][e] = accV[n][e] = 0.0f;
  for (int h = kh * group; h < (kh + 1) * group; ++h) {
    for (int q0 = j0; q0 < T; q0 += kTile) {  // causal: only query tiles at or after the key tile
      __syncthreads();
      load_tile<HD>(sQ, q + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
      load_tile<HD>(sdO, dout + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
      load_row_stats(sLse, sD, lse, D, ((size_t)b * H + h) * T, q0, T);
      __syncthreads();
      float p[kTile / 8][4], dp[kTile / 8][4];
      mma_abt<HD>(p, sK + warp * 16 * ld, sQ, g, t);    // Sᵀ = K Qᵀ
      mma_abt<HD>(dp, sV + warp * 16 * ld, sdO, g, t);  // dPᵀ = V dOᵀ
      for (int n = 0; n < kTile / 8; ++n)
        for (int e = 0; e < 4; ++e) {
          const int c = n * 8 + 2 * t + (e & 1), qi = q0 + c, key = kj[e >> 1];
          const bool live = key <= qi && qi < T && key < T;
          const float pr = live ? exp2f(p[n][e] * scale_log2 - sLse[c]) : 0.0f;
          if constexpr (kDrop) {
            const float z = dropout_factor(seed, (((uint64_t)b * H + h) * T + qi) * T + key, p_drop);
            p[n][e] = pr * z;
            dp[n][e] = pr * (z * dp[n][e] - sD[c]) * scale;  // dSᵀ
          } else {
            p[n][e] = pr;
            dp[n][e] = pr * (dp[n][e] - sD[c]) * scale;  // dSᵀ
          }
        }
      mma_pv<HD>(accV, p, sdO, lane);  // dV += Pᵀ dO
      mma_pv<HD>(accK, dp, sQ, lane);  // dK += dSᵀ Q
    }
  }
  for (int r = 0; r < 2; ++r) {
    if (kj[r] >= T) continue;
    const size_t off = (((size_t)b * T + kj[r]) * KV + kh) * HD;
    const size_t voff = ((size_t)b * T + kj[r]) * ld_dv + (size_t)kh * HD;
    for (int n = 0; n < HD / 8; ++n) {
      *reinterpret_cast<__nv_bfloat162*>(dk + off + n * 8 + 2 * t) =
          __floats2bfloat162_rn(accK[n][2 * r], accK[n][2 * r + 1]);
      *reinterpret_cast<__nv_bfloat162*>(dv + voff + n * 8 + 2 * t) =
          __floats2bfloat162_rn(accV[n][2 * r], accV[n][2 * r + 1]);
    }
  }
}

template <int HD, bool kDrop>
__global__ void __launch_bounds__(kThreads) flash_dq_kernel(__nv_bfloat16* dq, const __nv_bfloat16* dout,
                                                            const __nv_bfloat16* q, const __nv_bfloat16* k,
                                                            const __nv_bfloat16* v, const float* lse, const float* D,
                                                            int T, int H, int KV, float scale_log2, float scale,
                                                            float p_drop, uint64_t seed) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr int ld = ld_h<HD>();
  auto* sQ = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* sdO = sQ + kTile * ld;
  __nv_bfloat16* sK = sdO + kTile * ld;
  __nv_bfloat16* sV = sK + kTile * ld;
  auto* sLse = reinterpret_cast<float*>(sV + kTile * ld);
  float* sD = sLse + kTile;
  const int q0 = blockIdx.x * kTile, h = blockIdx.y, b = blockIdx.z, kh = h / (H / KV);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const size_t q_stride = (size_t)H * HD, kv_stride = (size_t)KV * HD;
  load_tile<HD>(sQ, q + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
  load_tile<HD>(sdO, dout + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
  load_row_stats(sLse, sD, lse, D, ((size_t)b * H + h) * T, q0, T);
  const int rl[2] = {warp * 16 + g, warp * 16 + g + 8};  // this lane's two query rows within the tile
  float acc[HD / 8][4];
  for (int n = 0; n < HD / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  const int last = min(T - 1, q0 + kTile - 1);
  for (int j0 = 0; j0 <= last; j0 += kTile) {
    __syncthreads();
    load_tile<HD>(sK, k + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
    load_tile<HD>(sV, v + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
    __syncthreads();
    float p[kTile / 8][4], ds[kTile / 8][4];
    mma_abt<HD>(p, sQ + warp * 16 * ld, sK, g, t);    // S = Q Kᵀ
    mma_abt<HD>(ds, sdO + warp * 16 * ld, sV, g, t);  // dP = dO Vᵀ
    for (int n = 0; n < kTile / 8; ++n)
      for (int e = 0; e < 4; ++e) {
        const int r = rl[e >> 1], qi = q0 + r, key = j0 + n * 8 + 2 * t + (e & 1);
        const bool live = key <= qi && qi < T && key < T;
        const float pr = live ? exp2f(p[n][e] * scale_log2 - sLse[r]) : 0.0f;
        if constexpr (kDrop) {
          const float z = dropout_factor(seed, (((uint64_t)b * H + h) * T + qi) * T + key, p_drop);
          ds[n][e] = pr * (z * ds[n][e] - sD[r]) * scale;
        } else {
          ds[n][e] = pr * (ds[n][e] - sD[r]) * scale;
        }
      }
    mma_pv<HD>(acc, ds, sK, lane);  // dQ += dS K
  }
  for (int r = 0; r < 2; ++r) {
    const int qi = q0 + rl[r];
    if (qi >= T) continue;
    __nv_bfloat16* row = dq + (((size_t)b * T + qi) * H + h) * HD;
    for (int n = 0; n < HD / 8; ++n)
      *reinterpret_cast<__nv_bfloat162*>(row + n * 8 + 2 * t) = __floats2bfloat162_rn(acc[n][2 * r], acc[n][2 * r + 1]);
  }
}

template <int HD, bool kDrop>
void launch_backward(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                     const bf16* v, const float* lse, const float* D, int B, int T, int H, int KV, float p,
                     uint64_t seed, int ld_dv) {
  constexpr size_t bytes = smem_bytes<HD>();
  allow_smem(flash_dkdv_kernel<HD, kDrop>, bytes);
  allow_smem(flash_dq_kernel<HD, kDrop>, bytes);
  const float scale = 1.0f / sqrtf((float)HD), scale_log2 = scale * kLog2e;
  const int tiles = (T + kTile - 1) / kTile;
  cudaStream_t st = stream_of(ctx);
  flash_dkdv_kernel<HD, kDrop><<<dim3(tiles, KV, B), kThreads, bytes, st>>>(
      dev(dk), dev(dv), dev(dout), dev(q), dev(k), dev(v), lse, D, T, H, KV, scale_log2, scale, p, seed, ld_dv);
  flash_dq_kernel<HD, kDrop><<<dim3(tiles, H, B), kThreads, bytes, st>>>(dev(dq), dev(dout), dev(q), dev(k), dev(v),
                                                                          lse, D, T, H, KV, scale_log2, scale, p, seed);
  check_last_launch("attention_backward");
}

template <int HD>
void launch_backward(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                     const bf16* v, const float* lse, const float* D, int B, int T, int H, int KV, float p,
                     uint64_t seed, int ld_dv) {
  if (p > 0.0f)
    launch_backward<HD, true>(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV, p, seed, ld_dv);
  else
    launch_backward<HD, false>(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV, p, seed, ld_dv);
}

}  // namespace

void attention_backward(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                        const bf16* v, const bf16* o, const float* lse, int B, int T, int H, int KV, int hd, float p,
                        uint64_t seed, AttentionKernels kernels, int ld_dv) {
  OB_CHECK(B > 0 && T > 0 && H > 0 && KV > 0 && H % KV == 0, "attention_backward: bad shape B=", B, " T=", T,
           " H=", H, " KV=", KV);
  OB_CHECK(p >= 0.0f && p < 1.0f, "attention_backward: dropout ", p, " is outside [0, 1)");
  const bool flash = hd == 64 || hd == 128;
  // The tensor-core kernels store dv in bf16 pairs, so a strided dv needs a stride in whole vectors; the
  // generic kernel stores scalars (any head_dim, contiguous dv of any width as before).
  if (ld_dv == 0) ld_dv = KV * hd;
  OB_CHECK(ld_dv >= KV * hd && (!flash || ld_dv % 8 == 0), "attention_backward: dv row stride ", ld_dv,
           " is below ", KV * hd, " or not a multiple of 8");
  OB_CHECK(!flash || ((uintptr_t)q | (uintptr_t)k | (uintptr_t)v | (uintptr_t)dout) % 16 == 0,
           "attention_backward: inputs not 16-byte aligned");
  const size_t rows = (size_t)B * T * H;
  // Auto: v3's backward with attention dropout (one dropout hash per score instead of two: 21-24% faster
  // on the H200 at the 125m and 0.3b shapes), v4's without (its TMA dK/dV pass and v2's dQ pass: 0.402 vs
  // v2's 0.462 ms at 125m) where that pass runs, else v2's. docs/benchmarks.md, "CUDA kernels".
  if (kernels == AttentionKernels::Auto)
    kernels = p > 0.0f                                 ? AttentionKernels::V3
              : attention_dkdv_tma_runs(hd, p, T, lse) ? AttentionKernels::V4
                                                       : AttentionKernels::V2;
  // V4 without dropout: v4's dK/dV pass and v2's dQ pass where the TMA kernel runs (head_dim 64, Hopper,
  // T % 4 == 0; D is the scratch's start, 256-byte aligned); the v3 structure with wgmma otherwise.
  const bool tma_dkdv = kernels == AttentionKernels::V4 && attention_dkdv_tma_runs(hd, p, T, lse);
  const bool v3 = flash && !tma_dkdv && (kernels == AttentionKernels::V3 || kernels == AttentionKernels::V4);
  // D (and v3's dS buffer after it) in the context's scratch. v3 takes as many batch rows of dS as the
  // scratch already holds, at least kMinDsBudget's worth (the size of the trainer's LM-head logits
  // chunk) or one row; the rest of the batch runs in further chunks. The budget bounds what v3 adds to
  // a training step's peak memory (125m at batch 16 x 1024: +80 MB, 0.3b: +50 MB on the H200).
  size_t d_bytes = sizeof(float) * rows, ds_bytes = 0;
  int chunk = 0;
  if (v3) {
    constexpr size_t kMinDsBudget = size_t{128} << 20;
    d_bytes = (d_bytes + 255) / 256 * 256;
    const size_t per_row = attention_v3_ds_bytes(T, H), held = ctx.scratch_capacity();
    const size_t budget = std::max(held > d_bytes ? held - d_bytes : 0, kMinDsBudget);
    chunk = (int)std::clamp<size_t>(budget / per_row, 1, (size_t)B);
    ds_bytes = per_row * chunk;
  }
  auto* base = static_cast<char*>(ctx.scratch(d_bytes + ds_bytes));
  auto* D = reinterpret_cast<float*>(base);
  launch_attention_delta(stream_of(ctx), D, dev(dout), dev(o), T, H, hd, rows);
  if (v3)
    attention_backward_v3(ctx, dq, dk, dv, dout, q, k, v, lse, D, reinterpret_cast<bf16*>(base + d_bytes), chunk, B, T,
                          H, KV, hd, p, seed, kernels == AttentionKernels::V4, ld_dv);
  else if (!flash)
    attention_backward_generic(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV, hd, p, seed, ld_dv);
  else if (kernels == AttentionKernels::V2 || tma_dkdv)
    attention_backward_v2(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV, hd, p, seed, ld_dv, tma_dkdv);
  else if (hd == 64)
    launch_backward<64>(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV, p, seed, ld_dv);
  else
    launch_backward<128>(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV, p, seed, ld_dv);
}

}  // namespace onebit::kernels::cuda
