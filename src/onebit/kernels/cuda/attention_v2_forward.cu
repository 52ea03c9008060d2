// Flash attention forward, v2 (the default; ONEBIT_CUDA_ATTENTION=v1 selects attention_forward.cu's):
// FlashAttention-2's schedule with the v1 kernel's register-resident online softmax, plus
//   - a larger query tile: 8 warps x 16 rows = 128 queries per block at hd 64 (4 warps, 64 at hd 128),
//     so each K/V tile staged in shared memory serves twice the rows;
//   - K/V tiles double-buffered with cp.async: tile j+1 is in flight while tile j is computed;
//   - every fragment through ldmatrix (.x4: two mma operands per instruction; .trans for V) instead
//     of 32-bit shared loads;
//   - causal skipping per warp: a warp whose 16 rows all precede a key tile skips it, and only tiles
//     that cross the diagonal (or T) evaluate the mask;
//   - the longest query tiles (the last ones) are scheduled first;
//   - each probability is one FFMA and one ex2.approx (the max over the raw scores), and tiles that
//     cross nothing skip the mask (online_softmax_step): ncu found the kernel issue-bound on its ALU
//     work (0.203 -> 0.134 ms at 125m on the H200).
// Numerics are v1's up to rounding: scores and P·V in f32 on bf16 tensor cores, base-2 online softmax.
//
// Resources per block, from ptxas -v (sm_90, CUDA 13.0) and the tile sizes; H200 SM: 64K registers,
// 228 KB shared memory. hd 64: 256 threads x 128 registers (no spills), 55,296 B dynamic shared (Q
// 128 x 72 + 2 stages x (K, V) 64 x 72, bf16) -> 2 blocks = 16 warps per SM (v1: 130 registers x 128
// threads, 18 KB -> 3 blocks = 12 warps). hd 128: 128 threads x 202 registers, 87,040 B -> 2 blocks
// = 8 warps per SM. With dropout (the hash) 247-254 registers: 1 block per SM at hd 64.
#include "onebit/kernels/cuda/attention_v2.cuh"
#include "onebit/kernels/cuda/attention_v2_tiles.cuh"

namespace onebit::kernels::cuda {
namespace {

using namespace attn2;

template <int HD>
using FwdCfg = Cfg<HD, kFwdWarps<HD>>;

template <int HD>
constexpr size_t forward_smem_bytes() {
  using C = FwdCfg<HD>;
  return sizeof(__nv_bfloat16) * (size_t)(C::kRows + 4 * C::kStream) * C::kLd;
}

// Two blocks per SM (hd 64: at most 128 registers) without dropout; the mask's hashing needs a few more.
template <int HD, bool kDrop>
__global__ void __launch_bounds__(FwdCfg<HD>::kThreads, kDrop ? 1 : 2) flash_forward_v2_kernel(
    __nv_bfloat16* o, float* lse, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int T, int H,
    int KV, float scale_log2, float p_drop, uint64_t seed) {
  using C = FwdCfg<HD>;
  constexpr int ld = C::kLd, BM = C::kRows, BN = C::kStream, NT = C::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  auto* sQ = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* sK = sQ + BM * ld;      // [2][BN][ld]
  __nv_bfloat16* sV = sK + 2 * BN * ld;  // [2][BN][ld]
  const int q0 = (gridDim.x - 1 - blockIdx.x) * BM, h = blockIdx.y, b = blockIdx.z, kh = h / (H / KV);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const size_t q_stride = (size_t)H * HD, kv_stride = (size_t)KV * HD;
  const __nv_bfloat16* kb = k + ((size_t)b * T * KV + kh) * HD;
  const __nv_bfloat16* vb = v + ((size_t)b * T * KV + kh) * HD;

  const int last = min(T - 1, q0 + BM - 1);  // the last key any row of this block sees
  const int tiles = last / BN + 1;
  cp_tile<HD, BM, NT>(sQ, q + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
  cp_tile<HD, BN, NT>(sK, kb, 0, T, kv_stride);
  cp_tile<HD, BN, NT>(sV, vb, 0, T, kv_stride);
  cp_async_commit();

  const int w0 = q0 + warp * 16;  // this warp's first query row
  const int qi[2] = {w0 + g, w0 + g + 8};
  const uint64_t drop_row[2] = {(((uint64_t)b * H + h) * T + qi[0]) * T, (((uint64_t)b * H + h) * T + qi[1]) * T};
  float acc[HD / 8][4];
#pragma unroll
  for (int n = 0; n < HD / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8 (l: this lane's share)

  for (int j = 0; j < tiles; ++j) {
    double_buffer_step(j, tiles, [&](int jn, int s1) {
      cp_tile<HD, BN, NT>(sK + s1 * BN * ld, kb, jn * BN, T, kv_stride);
      cp_tile<HD, BN, NT>(sV + s1 * BN * ld, vb, jn * BN, T, kv_stride);
    });
    __syncthreads();
    const int j0 = j * BN;
    const __nv_bfloat16* cK = sK + (j & 1) * BN * ld;
    const __nv_bfloat16* cV = sV + (j & 1) * BN * ld;
    if (j0 <= w0 + 15 && w0 < T) {  // warp-uniform: some row of this warp sees some key of the tile
      float s[8][4];
      mma_abt<HD>(s, sQ + warp * 16 * ld, cK, lane);  // S = Q Kᵀ
      online_softmax_step<HD, kDrop>(s, acc, m, l, j0, w0, qi, T, scale_log2, drop_row, p_drop, seed, t);
      mma_pv<HD>(acc, s, cV, lane);  // O += P V
    }
    __syncthreads();  // every warp is done with stage j & 1 before iteration j+1 refills it
  }
  write_forward_rows<HD>(o, lse, acc, m, l, qi, b, h, T, H, t);
}

template <int HD, bool kDrop>
void launch(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H, int KV,
            float p, uint64_t seed) {
  using C = FwdCfg<HD>;
  constexpr size_t bytes = forward_smem_bytes<HD>();
  static const bool allowed = (allow_smem(flash_forward_v2_kernel<HD, kDrop>, bytes), true);
  (void)allowed;
  const dim3 grid((T + C::kRows - 1) / C::kRows, H, B);
  const float scale_log2 = kLog2e / sqrtf((float)HD);
  flash_forward_v2_kernel<HD, kDrop><<<grid, C::kThreads, bytes, stream_of(ctx)>>>(dev(o), lse, dev(q), dev(k), dev(v),
                                                                                   T, H, KV, scale_log2, p, seed);
  check_last_launch("attention_forward (v2)");
}

template <int HD>
void launch(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H, int KV,
            float p, uint64_t seed) {
  if (p > 0.0f)
    launch<HD, true>(ctx, o, lse, q, k, v, B, T, H, KV, p, seed);
  else
    launch<HD, false>(ctx, o, lse, q, k, v, B, T, H, KV, p, seed);
}

}  // namespace

void attention_forward_v2(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                          int H, int KV, int hd, float p, uint64_t seed) {
  if (hd == 64)
    launch<64>(ctx, o, lse, q, k, v, B, T, H, KV, p, seed);
  else
    launch<128>(ctx, o, lse, q, k, v, B, T, H, KV, p, seed);
}

}  // namespace onebit::kernels::cuda
