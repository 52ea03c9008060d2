// Flash attention backward, v2 (the default without attention dropout; ONEBIT_CUDA_ATTENTION=v1 selects
// attention_backward.cu's kernels). Still deterministic, no atomics (exact resume on the GPU needs the
// same bits every run):
// FlashAttention-2's single kernel accumulates dQ with f32 atomics in an order that varies from run
// to run, so v2 keeps v1's two passes (dK/dV per key tile, dQ per query tile; S and dP recomputed in
// both) and makes each of them faster the way the v2 forward is:
//   - the dQ pass's fixed tile is 128 query rows (8 warps x 16) at hd 64 (64 at hd 128);
//   - the streamed tiles (Q, dO, lse, D in the dK/dV pass; K, V in the dQ pass) are double-buffered
//     with cp.async, and the dK/dV pass runs one pipeline across all the heads of its GQA group;
//   - fragments come through ldmatrix.x4 (.trans for the right-hand operands of P·dO, dS·Q, dS·K);
//   - a warp whose 16 rows see nothing of a streamed tile (causal) skips it; only tiles that cross
//     the diagonal or T evaluate the mask;
//   - each probability and dS element is an FFMA, an ex2.approx and an FFMA/FMUL pair, lse and D
//     come from shared memory in pairs (dkdv_probs): ncu found both passes issue-bound on these
//     instructions (0.650 -> 0.461 ms at 125m on the H200).
// D = rowsum(dO ∘ O) comes from attention_backward.cu's delta kernel; lse is the forward's.
//
// Resources per block, from ptxas -v (sm_90, CUDA 13.0); H200 SM: 64K registers, 228 KB shared.
//   dK/dV: attention_v2_dkdv.cuh.
//   dQ, hd 64: 8 warps (128 queries) x 128 registers, 73,728 B (Q, dO 128 x 72 + 2 stages x (K, V)
//     64 x 72) -> 2 blocks = 16 warps per SM (v1: 121 registers x 4 warps, 4 blocks = 16 warps).
//   dQ, hd 128: 4 warps x 242 registers, 104,448 B -> 2 blocks = 8 warps per SM.
// With dropout the mask's hashing raises registers to 200-255.
#include "onebit/kernels/cuda/attention_v2.cuh"
#include "onebit/kernels/cuda/attention_v2_dkdv.cuh"
#include "onebit/kernels/cuda/attention_v2_tiles.cuh"
#include "onebit/kernels/cuda/attention_v3.cuh"

namespace onebit::kernels::cuda {
namespace {

using namespace attn2;

template <int HD>
using DqCfg = Cfg<HD, kDqWarps<HD>>;

template <int HD>
constexpr size_t dq_smem_bytes() {
  using C = DqCfg<HD>;
  return sizeof(__nv_bfloat16) * (size_t)(2 * C::kRows + 4 * C::kStream) * C::kLd;
}

// grid (query tiles of kRows, H, B), longest (last) query tiles first. Streams the key tiles this
// block's rows see: S = Q Kᵀ, dP = dO Vᵀ, dS = P ∘ (Z ∘ dP - D) / sqrt(hd), dQ += dS K.
// Blocks per SM: 2 without dropout (hd 64: at most 128 registers).
template <int HD, bool kDrop>
__global__ void __launch_bounds__(DqCfg<HD>::kThreads, kDrop ? 1 : 2) flash_dq_v2_kernel(
    __nv_bfloat16* dq, const __nv_bfloat16* dout, const __nv_bfloat16* q, const __nv_bfloat16* k,
    const __nv_bfloat16* v, const float* lse, const float* D, int T, int H, int KV, float scale_log2, float scale,
    float p_drop, uint64_t seed) {
  using C = DqCfg<HD>;
  constexpr int ld = C::kLd, BM = C::kRows, BN = C::kStream, NT = C::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  auto* sQ = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* sdO = sQ + BM * ld;
  __nv_bfloat16* sK = sdO + BM * ld;     // [2][BN][ld]
  __nv_bfloat16* sV = sK + 2 * BN * ld;  // [2][BN][ld]
  const int q0 = (gridDim.x - 1 - blockIdx.x) * BM, h = blockIdx.y, b = blockIdx.z, kh = h / (H / KV);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const size_t q_stride = (size_t)H * HD, kv_stride = (size_t)KV * HD;
  const __nv_bfloat16* kb = k + ((size_t)b * T * KV + kh) * HD;
  const __nv_bfloat16* vb = v + ((size_t)b * T * KV + kh) * HD;
  const int last = min(T - 1, q0 + BM - 1);
  const int tiles = last / BN + 1;
  cp_tile<HD, BM, NT>(sQ, q + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
  cp_tile<HD, BM, NT>(sdO, dout + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
  cp_tile<HD, BN, NT>(sK, kb, 0, T, kv_stride);
  cp_tile<HD, BN, NT>(sV, vb, 0, T, kv_stride);
  cp_async_commit();

  const int w0 = q0 + warp * 16;
  const int qi[2] = {w0 + g, w0 + g + 8};
  float L2[2], Ds[2];  // this lane's two rows: lse in base 2, D times the scale
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const size_t at = ((size_t)b * H + h) * T + qi[r];
    L2[r] = qi[r] < T ? lse[at] * kLog2e : 0.0f;
    Ds[r] = qi[r] < T ? D[at] * scale : 0.0f;
  }
  const uint64_t drop_row[2] = {(((uint64_t)b * H + h) * T + qi[0]) * T, (((uint64_t)b * H + h) * T + qi[1]) * T};
  float acc[HD / 8][4];
#pragma unroll
  for (int n = 0; n < HD / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

  for (int j = 0; j < tiles; ++j) {
    double_buffer_step(j, tiles, [&](int jn, int s1) {
      cp_tile<HD, BN, NT>(sK + s1 * BN * ld, kb, jn * BN, T, kv_stride);
      cp_tile<HD, BN, NT>(sV + s1 * BN * ld, vb, jn * BN, T, kv_stride);
    });
    __syncthreads();
    const int j0 = j * BN;
    const __nv_bfloat16* cK = sK + (j & 1) * BN * ld;
    const __nv_bfloat16* cV = sV + (j & 1) * BN * ld;
    if (j0 <= w0 + 15 && w0 < T) {
      float s[8][4], ds[8][4];
      mma_abt<HD>(s, sQ + warp * 16 * ld, cK, lane);    // S = Q Kᵀ
      mma_abt<HD>(ds, sdO + warp * 16 * ld, cV, lane);  // dP = dO Vᵀ (before the mask)
      dq_probs<kDrop>(s, ds, j0, w0, qi, T, L2, Ds, scale_log2, scale, drop_row, p_drop, seed, t);
      mma_pv<HD>(acc, ds, cK, lane);  // dQ += dS K
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (qi[r] >= T) continue;
    __nv_bfloat16* row = dq + (((size_t)b * T + qi[r]) * H + h) * HD;
#pragma unroll
    for (int n = 0; n < HD / 8; ++n)
      *reinterpret_cast<__nv_bfloat162*>(row + n * 8 + 2 * t) = __floats2bfloat162_rn(acc[n][2 * r], acc[n][2 * r + 1]);
  }
}

template <int HD, bool kDrop>
void launch(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
            const float* lse, const float* D, int B, int T, int H, int KV, float p, uint64_t seed, int ld_dv,
            bool tma_dkdv) {
  using CK = KvCfg<HD>;
  using CQ = DqCfg<HD>;
  constexpr size_t kv_bytes = dkdv_smem_bytes<HD>(), q_bytes = dq_smem_bytes<HD>();
  static const bool allowed = (allow_smem(flash_dkdv_v2_kernel<HD, kDrop, false>, kv_bytes),
                               allow_smem(flash_dq_v2_kernel<HD, kDrop>, q_bytes), true);
  (void)allowed;
  const float scale = 1.0f / sqrtf((float)HD), scale_log2 = scale * kLog2e;
  // The two passes read only the inputs and write disjoint outputs: the dQ pass runs on the context's
  // second stream beside the dK/dV pass, so each fills the SMs the other's last wave leaves idle.
  cudaStream_t st = stream_of(ctx), side = ctx.fork();
  if (tma_dkdv)
    attention_dq_tma(side, dq, dout, q, k, v, lse, D, B, T, H, KV);
  else
    flash_dq_v2_kernel<HD, kDrop><<<dim3((T + CQ::kRows - 1) / CQ::kRows, H, B), CQ::kThreads, q_bytes, side>>>(
        dev(dq), dev(dout), dev(q), dev(k), dev(v), lse, D, T, H, KV, scale_log2, scale, p, seed);
  if (tma_dkdv)
    attention_dkdv_tma(st, dk, dv, dout, q, k, v, lse, D, B, T, H, KV, ld_dv);
  else
    flash_dkdv_v2_kernel<HD, kDrop, false><<<dim3((T + CK::kRows - 1) / CK::kRows, KV, B), CK::kThreads, kv_bytes,
                                             st>>>(dev(dk), dev(dv), nullptr, dev(dout), dev(q), dev(k), dev(v), lse,
                                                   D, T, H, KV, scale_log2, scale, p, seed, 0, ld_dv);
  ctx.join();
  check_last_launch("attention_backward (v2)");
}

template <int HD>
void launch(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
            const float* lse, const float* D, int B, int T, int H, int KV, float p, uint64_t seed, int ld_dv,
            bool tma_dkdv) {
  if (p > 0.0f)
    launch<HD, true>(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV, p, seed, ld_dv, false);
  else
    launch<HD, false>(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV, p, seed, ld_dv, tma_dkdv);
}

}  // namespace

void attention_backward_v2(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                           const bf16* v, const float* lse, const float* D, int B, int T, int H, int KV, int hd,
                           float p, uint64_t seed, int ld_dv, bool tma_dkdv) {
  if (hd == 64)
    launch<64>(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV, p, seed, ld_dv, tma_dkdv);
  else
    launch<128>(ctx, dq, dk, dv, dout, q, k, v, lse, D, B, T, H, KV, p, seed, ld_dv, false);
}

}  // namespace onebit::kernels::cuda
