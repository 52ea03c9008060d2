// Flash attention backward, v3 (ONEBIT_CUDA_ATTENTION=v3): the v2 dK/dV pass, which computes every
// causal dS tile anyway, also writes it (bf16, as the dK and dQ products round it), and the dQ pass
// becomes the plain product dQ = dS K. v2's dQ pass recomputes S = Q Kᵀ, P and dP = dO Vᵀ for that:
// 7 tile products per (query tile, key tile) pair in all, here 5 (FlashAttention-2's count) plus a
// write and a read of dS. Still deterministic: every dQ element is one fixed-order sum, no atomics.
//
// dS costs B x H x (T/64)(T/64 + 1)/2 x 8 KB (at B 16, T 1024, 12 heads: 214 MB); attention_backward
// runs the batch in chunks of at most 128 MiB of dS (or what the context's scratch already holds).
// Measured on the H200 (docs/benchmarks.md): with attention dropout v3 is 21-24% faster than v2 (the
// dropout hash runs once per score instead of twice), without it 8-13% slower (writing and reading dS
// costs more than recomputing S, P and dP on the tensor cores): the default (Auto) takes v3's
// backward only with dropout.
//
// v4 (ONEBIT_CUDA_ATTENTION=v4): on Hopper (sm_90a code, a compute capability 9.0 device) at head_dim
// 64 the dK/dV pass runs on warpgroup MMA (attention_wgmma.cuh): its block is one warpgroup of 64
// keys, so the four products per query tile (Sᵀ = K Qᵀ, dPᵀ = V dOᵀ, dV += Pᵀ dO, dK += dSᵀ Q) are
// wgmma instructions reading K, V, Q and dO from shared memory once per block instead of once per
// warp; the per-warp probability and dS code is the mma.sync kernel's (dkdv_probs). Correct, but
// slower than v3 on the H200 (backward 5-6%, v4's forward 11%): ncu shows these kernels issue-bound (a warp issues every 8-11
// cycles at 12-16 warps per SM), not tensor-bound, so the faster products do not show; FlashAttention-
// 3's producer/consumer warpgroups and overlapped softmax would be the next step.
//
// Resources per block, from ptxas -v (sm_90a, CUDA 13.0): the dQ kernel, 8 warps (128 queries = two
// 64-query tiles), hd 64: 2 stages x (K 64 x 72 + two dS tiles 64 x 72) bf16 = 55,296 B, 106
// registers; hd 128: 71,680 B, 128 registers. The wgmma dK/dV kernel: 4 warps, 50,176 B (K, V and 2
// stages of Q, dO as 64 x 64 core-matrix tiles, 2 x 2 x 64 f32 row statistics).
#include "onebit/kernels/cuda/attention_v2_dkdv.cuh"
#include "onebit/kernels/cuda/attention_v3.cuh"
#include "onebit/kernels/cuda/attention_wgmma.cuh"

namespace onebit::kernels::cuda {
namespace {

using namespace attn2;

// The dQ kernel's block: 8 warps; warps 0-3 own query tile i0 = q0 / 64, warps 4-7 tile i0 + 1, 16
// rows each. Streamed per key tile j: K (64 x HD) and the dSᵀ tiles (i0, j), (i0 + 1, j).
constexpr int kDqWarpsV3 = 8, kDqThreadsV3 = 32 * kDqWarpsV3, kDqRowsV3 = 2 * kDsTile, kLdS = kDsTile + 8;

template <int HD>
constexpr size_t dq_from_ds_smem_bytes() {
  return sizeof(__nv_bfloat16) * 2 * ((size_t)kDsTile * (HD + 8) + 2 * (size_t)kDsTile * kLdS);
}

// grid (query blocks of 128, H, batch rows b0..), longest (last) query blocks first.
// dQ[q] = sum over keys j <= q of dS[q, j] K[j] with dS from the dK/dV pass (scale included).
template <int HD>
__global__ void __launch_bounds__(kDqThreadsV3, 2)
    flash_dq_from_ds_kernel(__nv_bfloat16* dq, const __nv_bfloat16* ds, const __nv_bfloat16* k, int T, int H, int KV,
                            int b0) {
  constexpr int ldK = HD + 8, kStage = kDsTile * ldK + 2 * kDsTile * kLdS;
  extern __shared__ __align__(16) unsigned char smem[];
  auto* sbuf = reinterpret_cast<__nv_bfloat16*>(smem);  // [2 stages][K 64 x ldK | dSᵀ 2 x 64 x kLdS]
  const int q0 = (gridDim.x - 1 - blockIdx.x) * kDqRowsV3, h = blockIdx.y, bl = blockIdx.z, b = b0 + bl;
  const int kh = h / (H / KV), nt = (T + kDsTile - 1) / kDsTile, i0 = q0 / kDsTile;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const size_t kv_stride = (size_t)KV * HD;
  const __nv_bfloat16* kb = k + ((size_t)b * T * KV + kh) * HD;
  const __nv_bfloat16* dsh = ds + ds_tile_offset(bl, h, 0, 0, H, T);
  const int tiles = min(i0 + 1, nt - 1) + 1;  // key tiles 0 .. the block's last query tile
  auto load = [&](int j, int stage) {
    __nv_bfloat16* st = sbuf + stage * kStage;
    cp_tile<HD, kDsTile, kDqThreadsV3>(st, kb, j * kDsTile, T, kv_stride);
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const int i = i0 + s;
      if (i < nt && j <= i)  // block-uniform: tile (i, j) exists
        cp_tile<kDsTile, kDsTile, kDqThreadsV3>(st + kDsTile * ldK + s * kDsTile * kLdS,
                                                dsh + ((size_t)i * (i + 1) / 2 + j) * kDsTile * kDsTile, 0, kDsTile,
                                                kDsTile);
    }
  };
  load(0, 0);
  cp_async_commit();

  const int s = warp >> 2, qoff = (warp & 3) * 16, i = i0 + s, w0 = q0 + s * kDsTile + qoff;
  float acc[HD / 8][4];
#pragma unroll
  for (int n = 0; n < HD / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

  for (int j = 0; j < tiles; ++j) {
    double_buffer_step(j, tiles, load);
    __syncthreads();
    if (i < nt && j <= i && w0 < T) {  // warp-uniform
      const __nv_bfloat16* cK = sbuf + (j & 1) * kStage;
      const __nv_bfloat16* cS = cK + kDsTile * ldK + s * kDsTile * kLdS;
#pragma unroll
      for (int kk = 0; kk < kDsTile / 16; ++kk) {
        // A = dS (16 queries x 16 keys) from the [key][query] tile, transposed by ldmatrix: matrices
        // (q 0-7, keys 0-7), (q 8-15, keys 0-7), (q 0-7, keys 8-15), (q 8-15, keys 8-15).
        uint32_t a[4];
        ldsm_x4_trans(a, cS + (kk * 16 + (lane & 7) + (lane >> 4) * 8) * kLdS + qoff + ((lane >> 3) & 1) * 8);
        mma_a_rows<HD>(acc, a, cK + kk * 16 * ldK, lane);  // dQ += dS K
      }
    }
    __syncthreads();  // the stage just read is refilled by the next iteration's load
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int qi = w0 + g + 8 * r;
    if (i >= nt || qi >= T) continue;
    __nv_bfloat16* row = dq + (((size_t)b * T + qi) * H + h) * HD;
#pragma unroll
    for (int n = 0; n < HD / 8; ++n)
      *reinterpret_cast<__nv_bfloat162*>(row + n * 8 + 2 * t) = __floats2bfloat162_rn(acc[n][2 * r], acc[n][2 * r + 1]);
  }
}

constexpr int kWgTile = 64 * 64;  // elements of a 64 x 64 core-matrix tile
constexpr size_t kWgDkdvSmem = sizeof(__nv_bfloat16) * 6 * kWgTile + sizeof(float) * 4 * 64;

// The dK/dV pass on wgmma, head_dim 64: grid (key tiles of 64, KV, batch rows b0..), one warpgroup per
// block; the same schedule, dS store and results as flash_dkdv_v2_kernel<64, kDrop, true>.
template <bool kDrop>
__global__ void __launch_bounds__(128, 3) flash_dkdv_wgmma_kernel(
    __nv_bfloat16* dk, __nv_bfloat16* dv, __nv_bfloat16* ds, const __nv_bfloat16* dout, const __nv_bfloat16* q,
    const __nv_bfloat16* k, const __nv_bfloat16* v, const float* lse, const float* D, int T, int H, int KV,
    float scale_log2, float scale, float p_drop, uint64_t seed, int b0, int ld_dv) {
#if ONEBIT_WGMMA
  constexpr int HD = 64, BK = 64, BQ = 64, NT = 128;
  extern __shared__ __align__(128) unsigned char smem[];
  auto* sK = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* sV = sK + kWgTile;
  __nv_bfloat16* sQ = sV + kWgTile;        // [2][64 x 64]
  __nv_bfloat16* sdO = sQ + 2 * kWgTile;   // [2][64 x 64]
  auto* sL = reinterpret_cast<float*>(sdO + 2 * kWgTile);  // [2][BQ] natural-log lse
  float* sD = sL + 2 * BQ;                                 // [2][BQ]
  const int j0 = blockIdx.x * BK, kh = blockIdx.y, b = b0 + blockIdx.z, group = H / KV;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const size_t q_stride = (size_t)H * HD, kv_stride = (size_t)KV * HD;
  const int per_head = (T - j0 + BQ - 1) / BQ, steps = group * per_head;
  auto load_step = [&](int step, int stage) {
    const int h = kh * group + step / per_head, q0 = j0 + (step % per_head) * BQ;
    wg::cp_tile_core<BQ, NT>(sQ + stage * kWgTile, q + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
    wg::cp_tile_core<BQ, NT>(sdO + stage * kWgTile, dout + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
    cp_row_stats(sL + stage * BQ, sD + stage * BQ, lse, D, b, h, q0, T, H);
  };
  wg::cp_tile_core<BK, NT>(sK, k + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
  wg::cp_tile_core<BK, NT>(sV, v + ((size_t)b * T * KV + kh) * HD, j0, T, kv_stride);
  load_step(0, 0);
  cp_async_commit();

  const int w0 = j0 + warp * 16;
  const int kj[2] = {w0 + g, w0 + g + 8};
  float accK[8][4], accV[8][4];
#pragma unroll
  for (int n = 0; n < 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) accK[n][e] = accV[n][e] = 0.0f;

  for (int step = 0; step < steps; ++step) {
    double_buffer_step(step, steps, load_step);
    wg::fence_async_smem();
    __syncthreads();
    const int st = step & 1, h = kh * group + step / per_head, q0 = j0 + (step % per_head) * BQ;
    const __nv_bfloat16* cQ = sQ + st * kWgTile;
    const __nv_bfloat16* cdO = sdO + st * kWgTile;
    float p[8][4], dp[8][4];
    wg::fence();
    wg::mma_abt64(&p[0][0], sK, cQ);    // Sᵀ = K Qᵀ
    wg::mma_abt64(&dp[0][0], sV, cdO);  // dPᵀ = V dOᵀ
    wg::commit();
    wg::wait_all();
    // Every warp takes part (wgmma is warpgroup-wide); keys past T get P = dS = 0 in dkdv_probs.
    dkdv_probs<kDrop>(p, dp, sL + st * BQ, sD + st * BQ, q0, w0, kj, T, ((uint64_t)b * H + h) * T, scale_log2, scale,
                      p_drop, seed, t);
    wg::fence();
    wg::mma_pv64(&accV[0][0], p, cdO);  // dV += (P ∘ Z)ᵀ dO
    wg::mma_pv64(&accK[0][0], dp, cQ);  // dK += dSᵀ Q
    wg::commit();
    store_ds_rows(ds + ds_tile_offset(b - b0, h, q0 / BQ, blockIdx.x, H, T), dp, warp, lane);
    wg::wait_all();
    __syncthreads();  // stage st is refilled by the next iteration's load
  }
  write_dkdv_rows<HD>(dk, dv, accK, accV, kj, b, kh, T, KV, t, ld_dv);
#else
  __trap();
#endif
}

template <int HD, bool kDrop>
void launch(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
            const float* lse, const float* D, bf16* ds, int chunk, int B, int T, int H, int KV, float p,
            uint64_t seed, bool wgmma_requested, int ld_dv) {
  using CK = KvCfg<HD>;
  static_assert(CK::kRows == kDsTile && CK::kStream == kDsTile, "dS tiles are the dK/dV pass's 64-row tiles");
  constexpr size_t kv_bytes = dkdv_smem_bytes<HD>(), q_bytes = dq_from_ds_smem_bytes<HD>();
  static const bool allowed = (allow_smem(flash_dkdv_v2_kernel<HD, kDrop, true>, kv_bytes),
                               allow_smem(flash_dq_from_ds_kernel<HD>, q_bytes), true);
  (void)allowed;
  const float scale = 1.0f / sqrtf((float)HD), scale_log2 = scale * kLog2e;
  cudaStream_t st = stream_of(ctx);
  const bool wgmma = HD == 64 && wgmma_requested && attention_wgmma_available();
  if (wgmma) {
    static const bool wg_allowed = (allow_smem(flash_dkdv_wgmma_kernel<kDrop>, kWgDkdvSmem), true);
    (void)wg_allowed;
  }
  for (int b0 = 0; b0 < B; b0 += chunk) {
    const int nb = std::min(chunk, B - b0);
    const dim3 kv_grid((T + CK::kRows - 1) / CK::kRows, KV, nb);  // 64-key blocks for either kernel
    if (wgmma)
      flash_dkdv_wgmma_kernel<kDrop><<<kv_grid, 128, kWgDkdvSmem, st>>>(
          dev(dk), dev(dv), dev(ds), dev(dout), dev(q), dev(k), dev(v), lse, D, T, H, KV, scale_log2, scale, p, seed,
          b0, ld_dv);
    else
      flash_dkdv_v2_kernel<HD, kDrop, true><<<kv_grid, CK::kThreads, kv_bytes, st>>>(
          dev(dk), dev(dv), dev(ds), dev(dout), dev(q), dev(k), dev(v), lse, D, T, H, KV, scale_log2, scale, p, seed,
          b0, ld_dv);
    flash_dq_from_ds_kernel<HD><<<dim3((T + kDqRowsV3 - 1) / kDqRowsV3, H, nb), kDqThreadsV3, q_bytes, st>>>(
        dev(dq), dev(ds), dev(k), T, H, KV, b0);
  }
  check_last_launch("attention_backward (v3)");
}

template <int HD>
void launch(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
            const float* lse, const float* D, bf16* ds, int chunk, int B, int T, int H, int KV, float p,
            uint64_t seed, bool wgmma, int ld_dv) {
  if (p > 0.0f)
    launch<HD, true>(ctx, dq, dk, dv, dout, q, k, v, lse, D, ds, chunk, B, T, H, KV, p, seed, wgmma, ld_dv);
  else
    launch<HD, false>(ctx, dq, dk, dv, dout, q, k, v, lse, D, ds, chunk, B, T, H, KV, p, seed, wgmma, ld_dv);
}

}  // namespace

size_t attention_v3_ds_bytes(int T, int H) { return sizeof(bf16) * ds_tiles_per_head(T) * H * kDsTile * kDsTile; }

void attention_backward_v3(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                           const bf16* v, const float* lse, const float* D, bf16* ds, int chunk, int B, int T, int H,
                           int KV, int hd, float p, uint64_t seed, bool wgmma, int ld_dv) {
  if (hd == 64)
    launch<64>(ctx, dq, dk, dv, dout, q, k, v, lse, D, ds, chunk, B, T, H, KV, p, seed, wgmma, ld_dv);
  else
    launch<128>(ctx, dq, dk, dv, dout, q, k, v, lse, D, ds, chunk, B, T, H, KV, p, seed, wgmma, ld_dv);
}

}  // namespace onebit::kernels::cuda
