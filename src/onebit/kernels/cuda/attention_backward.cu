// Flash attention backward, FlashAttention-2 style (probabilities recomputed tile by tile from the
// saved log-sum-exp) and deterministic: no atomics. Pass 1 (one block per key tile and KV head) loops
// over the query tiles of every head in the GQA group and accumulates dK, dV in registers; pass 2
// (one block per query tile and head) loops over key tiles and accumulates dQ. Both recompute
// P = exp(S - lse) and dS = P (dP - D) / sqrt(hd) with D = rowsum(dO · O).
#include "onebit/kernels/cuda/attention_tiles.cuh"

namespace onebit::kernels::cuda {
namespace {

using namespace attn;

// D[b,h,t] = sum_i dO[b,t,h,i] O[b,t,h,i] (f32); one warp per row.
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

template <int HD>
struct BwdSmem {
  static constexpr size_t tile = sizeof(__nv_bfloat16) * kTile * ld_h<HD>();
  static constexpr size_t q = 0, dO = tile, k = 2 * tile, v = 3 * tile;
  static constexpr size_t s = 4 * tile;                                  // f32 S, then P
  static constexpr size_t dp = s + sizeof(float) * kTile * kLdS;          // f32 dP
  static constexpr size_t p = dp + sizeof(float) * kTile * kLdS;          // bf16 P
  static constexpr size_t ds = p + sizeof(__nv_bfloat16) * kTile * kLdP;  // bf16 dS
  static constexpr size_t stats = ds + sizeof(__nv_bfloat16) * kTile * kLdP;
  static constexpr size_t bytes = stats + sizeof(float) * 2 * kTile;
};

// With Q, dO (query tile q0), K, V (key tile j0) staged and lse / D of the query rows in sLse / sD:
// P (bf16, sP) and dS (bf16, sDS, already scaled by 1/sqrt(hd)) for the tile pair. Warp w handles
// query rows 16w..16w+15.
template <int HD>
__device__ inline void probs_and_dscores(unsigned char* smem, int q0, int j0, int T, float scale_log2, float scale,
                                         int warp, int lane) {
  using L = BwdSmem<HD>;
  auto* sQ = reinterpret_cast<const __nv_bfloat16*>(smem + L::q);
  auto* sdO = reinterpret_cast<const __nv_bfloat16*>(smem + L::dO);
  auto* sK = reinterpret_cast<const __nv_bfloat16*>(smem + L::k);
  auto* sV = reinterpret_cast<const __nv_bfloat16*>(smem + L::v);
  auto* sS = reinterpret_cast<float*>(smem + L::s);
  auto* sDP = reinterpret_cast<float*>(smem + L::dp);
  auto* sP = reinterpret_cast<__nv_bfloat16*>(smem + L::p);
  auto* sDS = reinterpret_cast<__nv_bfloat16*>(smem + L::ds);
  auto* sLse = reinterpret_cast<const float*>(smem + L::stats);
  const float* sD = sLse + kTile;
  warp_abt<HD>(sS, sQ, sK, warp);
  warp_abt<HD>(sDP, sdO, sV, warp);
  __syncwarp();
  for (int rr = 0; rr < 16; ++rr) {
    const int r = warp * 16 + rr, qi = q0 + r;
    const float lse2 = sLse[r], d = sD[r];
    for (int c = lane; c < kTile; c += 32) {
      const int kj = j0 + c;
      const bool live = kj <= qi && kj < T && qi < T;
      const float p = live ? exp2f(sS[r * kLdS + c] * scale_log2 - lse2) : 0.0f;
      sP[r * kLdP + c] = __float2bfloat16_rn(p);
      sDS[r * kLdP + c] = __float2bfloat16_rn(p * (sDP[r * kLdS + c] - d) * scale);
    }
  }
}

template <int HD>
__device__ inline void load_row_stats(float* sLse, float* sD, const float* lse, const float* D, size_t base, int q0,
                                      int T) {
  if (threadIdx.x < kTile) {
    const int qi = q0 + threadIdx.x;
    sLse[threadIdx.x] = qi < T ? lse[base + qi] * kLog2e : 0.0f;
    sD[threadIdx.x] = qi < T ? D[base + qi] : 0.0f;
  }
}

template <int HD>
__global__ void __launch_bounds__(kThreads) flash_dkdv_kernel(__nv_bfloat16* dk, __nv_bfloat16* dv,
                                                              const __nv_bfloat16* dout, const __nv_bfloat16* q,
                                                              const __nv_bfloat16* k, const __nv_bfloat16* v,
                                                              const float* lse, const float* D, int T, int H, int KV,
                                                              float scale_log2, float scale) {
  extern __shared__ __align__(128) unsigned char smem[];
  using L = BwdSmem<HD>;
  auto* sQ = reinterpret_cast<__nv_bfloat16*>(smem + L::q);
  auto* sdO = reinterpret_cast<__nv_bfloat16*>(smem + L::dO);
  auto* sP = reinterpret_cast<__nv_bfloat16*>(smem + L::p);
  auto* sDS = reinterpret_cast<__nv_bfloat16*>(smem + L::ds);
  auto* sLse = reinterpret_cast<float*>(smem + L::stats);
  const int j0 = blockIdx.x * kTile, kh = blockIdx.y, b = blockIdx.z, group = H / KV;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const size_t q_stride = (size_t)H * HD, kv_stride = (size_t)KV * HD;
  load_tile<HD>(reinterpret_cast<__nv_bfloat16*>(smem + L::k), k + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
  load_tile<HD>(reinterpret_cast<__nv_bfloat16*>(smem + L::v), v + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
  // This warp's 16 key rows of dK and dV, HD/16 fragments each.
  FragC accK[HD / 16], accV[HD / 16];
  for (int n = 0; n < HD / 16; ++n) {
    wmma::fill_fragment(accK[n], 0.0f);
    wmma::fill_fragment(accV[n], 0.0f);
  }
  for (int h = kh * group; h < (kh + 1) * group; ++h) {
    const size_t stat_base = ((size_t)b * H + h) * T;
    for (int q0 = j0; q0 < T; q0 += kTile) {  // causal: only query tiles at or after the key tile
      __syncthreads();
      load_tile<HD>(sQ, q + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
      load_tile<HD>(sdO, dout + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
      load_row_stats<HD>(sLse, sLse + kTile, lse, D, stat_base, q0, T);
      __syncthreads();
      probs_and_dscores<HD>(smem, q0, j0, T, scale_log2, scale, warp, lane);
      __syncthreads();
      // dV[warp keys] += Pᵀ[warp keys][64 queries] · dO ; dK[warp keys] += dSᵀ · Q
      for (int kk = 0; kk < kTile / 16; ++kk) {
        FragAT pt, dst;
        wmma::load_matrix_sync(pt, sP + kk * 16 * kLdP + warp * 16, kLdP);
        wmma::load_matrix_sync(dst, sDS + kk * 16 * kLdP + warp * 16, kLdP);
        for (int n = 0; n < HD / 16; ++n) {
          FragB bo, bq;
          wmma::load_matrix_sync(bo, sdO + kk * 16 * ld_h<HD>() + n * 16, ld_h<HD>());
          wmma::load_matrix_sync(bq, sQ + kk * 16 * ld_h<HD>() + n * 16, ld_h<HD>());
          wmma::mma_sync(accV[n], pt, bo, accV[n]);
          wmma::mma_sync(accK[n], dst, bq, accK[n]);
        }
      }
    }
  }
  // Stage through the (now free) f32 score buffers and write the rows inside T.
  __syncthreads();
  auto* stage = reinterpret_cast<float*>(smem + L::s);  // [64][HD + 4] f32 fits in S and dP together
  constexpr int lds = HD + 4;
  static_assert(sizeof(float) * kTile * lds <= 2 * sizeof(float) * kTile * kLdS, "dK/dV staging overflows S and dP");
  for (int pass = 0; pass < 2; ++pass) {
    for (int n = 0; n < HD / 16; ++n)
      wmma::store_matrix_sync(stage + warp * 16 * lds + n * 16, pass == 0 ? accK[n] : accV[n], lds,
                              wmma::mem_row_major);
    __syncwarp();
    __nv_bfloat16* dst = pass == 0 ? dk : dv;
    for (int rr = 0; rr < 16; ++rr) {
      const int kj = j0 + warp * 16 + rr;
      if (kj >= T) break;
      for (int c = lane; c < HD; c += 32)
        dst[(((size_t)b * T + kj) * KV + kh) * HD + c] = __float2bfloat16_rn(stage[(warp * 16 + rr) * lds + c]);
    }
    __syncwarp();
  }
}

template <int HD>
__global__ void __launch_bounds__(kThreads) flash_dq_kernel(__nv_bfloat16* dq, const __nv_bfloat16* dout,
                                                            const __nv_bfloat16* q, const __nv_bfloat16* k,
                                                            const __nv_bfloat16* v, const float* lse, const float* D,
                                                            int T, int H, int KV, float scale_log2, float scale) {
  extern __shared__ __align__(128) unsigned char smem[];
  using L = BwdSmem<HD>;
  auto* sK = reinterpret_cast<__nv_bfloat16*>(smem + L::k);
  auto* sV = reinterpret_cast<__nv_bfloat16*>(smem + L::v);
  auto* sDS = reinterpret_cast<__nv_bfloat16*>(smem + L::ds);
  auto* sLse = reinterpret_cast<float*>(smem + L::stats);
  const int q0 = blockIdx.x * kTile, h = blockIdx.y, b = blockIdx.z, kh = h / (H / KV);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const size_t q_stride = (size_t)H * HD, kv_stride = (size_t)KV * HD;
  load_tile<HD>(reinterpret_cast<__nv_bfloat16*>(smem + L::q), q + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
  load_tile<HD>(reinterpret_cast<__nv_bfloat16*>(smem + L::dO), dout + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
  load_row_stats<HD>(sLse, sLse + kTile, lse, D, ((size_t)b * H + h) * T, q0, T);
  FragC acc[HD / 16];
  for (int n = 0; n < HD / 16; ++n) wmma::fill_fragment(acc[n], 0.0f);
  const int last = min(T - 1, q0 + kTile - 1);
  for (int j0 = 0; j0 <= last; j0 += kTile) {
    __syncthreads();
    load_tile<HD>(sK, k + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
    load_tile<HD>(sV, v + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
    __syncthreads();
    probs_and_dscores<HD>(smem, q0, j0, T, scale_log2, scale, warp, lane);
    __syncwarp();
    // dQ[warp rows] += dS[warp rows][64 keys] · K[64][HD]
    for (int kk = 0; kk < kTile / 16; ++kk) {
      FragA a;
      wmma::load_matrix_sync(a, sDS + warp * 16 * kLdP + kk * 16, kLdP);
      for (int n = 0; n < HD / 16; ++n) {
        FragB bk;
        wmma::load_matrix_sync(bk, sK + kk * 16 * ld_h<HD>() + n * 16, ld_h<HD>());
        wmma::mma_sync(acc[n], a, bk, acc[n]);
      }
    }
  }
  __syncthreads();
  auto* stage = reinterpret_cast<float*>(smem + L::s);
  constexpr int lds = HD + 4;
  for (int n = 0; n < HD / 16; ++n)
    wmma::store_matrix_sync(stage + warp * 16 * lds + n * 16, acc[n], lds, wmma::mem_row_major);
  __syncwarp();
  for (int rr = 0; rr < 16; ++rr) {
    const int qi = q0 + warp * 16 + rr;
    if (qi >= T) break;
    for (int c = lane; c < HD; c += 32)
      dq[(((size_t)b * T + qi) * H + h) * HD + c] = __float2bfloat16_rn(stage[(warp * 16 + rr) * lds + c]);
  }
}

template <int HD>
void launch_backward(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                     const bf16* v, const float* lse, const float* D, int B, int T, int H, int KV) {
  constexpr size_t bytes = BwdSmem<HD>::bytes;
  OB_CUDA(cudaFuncSetAttribute(flash_dkdv_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
  OB_CUDA(cudaFuncSetAttribute(flash_dq_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
  const float scale = 1.0f / sqrtf((float)HD), scale_log2 = scale * kLog2e;
  const int tiles = (T + kTile - 1) / kTile;
  cudaStream_t st = stream_of(ctx);
  flash_dkdv_kernel<HD><<<dim3(tiles, KV, B), kThreads, bytes, st>>>(dev(dk), dev(dv), dev(dout), dev(q), dev(k),
                                                                      dev(v), lse, D, T, H, KV, scale_log2, scale);
  flash_dq_kernel<HD><<<dim3(tiles, H, B), kThreads, bytes, st>>>(dev(dq), dev(dout), dev(q), dev(k), dev(v), lse, D,
                                                                   T, H, KV, scale_log2, scale);
  check_last_launch("attention_backward");
}

}  // namespace

void attention_backward(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                        const bf16* v, const bf16* o, const float* lse, int B, int T, int H, int KV, int hd) {
  OB_CHECK(B > 0 && T > 0 && H > 0 && KV > 0 && H % KV == 0, "attention_backward: bad shape B=", B, " T=", T,
           " H=", H, " KV=", KV);
  OB_CHECK(hd == 64 || hd == 128, "attention_backward: head_dim ", hd, " is not supported (64 or 128)");
  OB_CHECK(((uintptr_t)q | (uintptr_t)k | (uintptr_t)v | (uintptr_t)dout) % 16 == 0,
           "attention_backward: inputs not 16-byte aligned");
  const size_t rows = (size_t)B * T * H;
  auto* D = static_cast<float*>(ctx.scratch(sizeof(float) * rows));
  attention_delta_kernel<<<(unsigned)((rows + 7) / 8), 256, 0, stream_of(ctx)>>>(D, dev(dout), dev(o), T, H, hd, rows);
  if (hd == 64)
    launch_backward<64>(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV);
  else
    launch_backward<128>(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV);
}

}  // namespace onebit::kernels::cuda
