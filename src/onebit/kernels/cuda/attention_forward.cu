// Flash attention forward (FlashAttention-2 schedule): one block per (64 queries, head, batch), four
// warps of 16 query rows each. Key/value tiles of 64 rows are staged in shared memory; scores, the
// online softmax (f32, base-2 exponentials of pre-scaled scores) and the output accumulator stay in
// registers, using the documented fragment layouts of the bf16 mma.sync.m16n8k16 tensor-core
// instruction (sm_80 and newer): the score accumulator of S = Q Kᵀ is re-packed in place as the A
// operand of O += P V. Saves only O and the per-row natural log-sum-exp. Attention dropout multiplies
// the probabilities by the shared mask after they entered the normaliser (kDrop; p = 0 compiles
// without it). These are the v1 kernels (ONEBIT_CUDA_ATTENTION=v1); attention_v2_forward.cu holds the
// default.
#include "onebit/kernels/cuda/attention_generic.cuh"
#include "onebit/kernels/cuda/attention_tiles.cuh"
#include "onebit/kernels/cuda/attention_v2.cuh"
#include "onebit/kernels/cuda/attention_v3.cuh"

namespace onebit::kernels::cuda {
namespace {

using namespace attn;

template <int HD, bool kDrop>
__global__ void __launch_bounds__(kThreads) flash_forward_kernel(__nv_bfloat16* o, float* lse, const __nv_bfloat16* q,
                                                                 const __nv_bfloat16* k, const __nv_bfloat16* v, int T,
                                                                 int H, int KV, float scale_log2, float p_drop,
                                                                 uint64_t seed) {
  constexpr int ld = ld_h<HD>();
  // Q passes through sK on its way to registers (48 KB of static shared memory at hd 128 otherwise).
  __shared__ __align__(16) __nv_bfloat16 sK[kTile * ld], sV[kTile * ld];
  __nv_bfloat16* sQ = sK;
  const int q0 = blockIdx.x * kTile, h = blockIdx.y, b = blockIdx.z, kh = h / (H / KV);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const size_t q_stride = (size_t)H * HD, kv_stride = (size_t)KV * HD;
  const __nv_bfloat16* kb = k + ((size_t)b * T * KV + kh) * HD;
  const __nv_bfloat16* vb = v + ((size_t)b * T * KV + kh) * HD;

  load_tile<HD>(sQ, q + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
  __syncthreads();
  uint32_t qa[HD / 16][4];  // this warp's 16 query rows as A fragments, kept in registers
  for (int kk = 0; kk < HD / 16; ++kk) load_a<HD>(qa[kk], sQ + warp * 16 * ld, kk * 16, g, t);
  float acc[HD / 8][4];
  for (int n = 0; n < HD / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8 (l: this lane's share)
  const int qi[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  // Attention dropout: the mask index of (row, key) is drop_row[r] + key (kernels.h).
  const uint64_t drop_row[2] = {(((uint64_t)b * H + h) * T + qi[0]) * T, (((uint64_t)b * H + h) * T + qi[1]) * T};

  const int last = min(T - 1, q0 + kTile - 1);  // the last key any row of this tile sees
  for (int j0 = 0; j0 <= last; j0 += kTile) {
    __syncthreads();  // every warp is done with the previous K / V tile
    load_tile<HD>(sK, kb, j0, T, kv_stride);
    load_tile<HD>(sV, vb, j0, T, kv_stride);
    __syncthreads();
    float s[kTile / 8][4];
    for (int n = 0; n < kTile / 8; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
      const __nv_bfloat16* kr = sK + (n * 8 + g) * ld + 2 * t;
      for (int kk = 0; kk < HD / 16; ++kk) mma16816(s[n], qa[kk], ld32(kr + kk * 16), ld32(kr + kk * 16 + 8));
    }
    // Online softmax: scale, mask (causal and past T), new row maxima over the 4 lanes of a row.
    float mx[2] = {-INFINITY, -INFINITY};
    for (int n = 0; n < kTile / 8; ++n)
      for (int e = 0; e < 4; ++e) {
        const int kj = j0 + n * 8 + 2 * t + (e & 1), r = e >> 1;
        s[n][e] = (kj <= qi[r] && kj < T) ? s[n][e] * scale_log2 : -INFINITY;
        mx[r] = fmaxf(mx[r], s[n][e]);
      }
    float base[2], alpha[2];
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float m_new = fmaxf(m[r], mx[r]);
      base[r] = m_new == -INFINITY ? 0.0f : m_new;  // a row with no live key yet keeps p = 0
      alpha[r] = exp2f(m[r] - base[r]);
      m[r] = m_new;
      l[r] *= alpha[r];
    }
    for (int n = 0; n < kTile / 8; ++n)
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        s[n][e] = exp2f(s[n][e] - base[r]);
        l[r] += s[n][e];  // the softmax normaliser is that of the undropped probabilities
        if constexpr (kDrop)
          s[n][e] *= dropout_factor(seed, drop_row[r] + (uint64_t)(j0 + n * 8 + 2 * t + (e & 1)), p_drop);
      }
    for (int n = 0; n < HD / 8; ++n) {
      acc[n][0] *= alpha[0];
      acc[n][1] *= alpha[0];
      acc[n][2] *= alpha[1];
      acc[n][3] *= alpha[1];
    }
    mma_pv<HD>(acc, s, sV, lane);  // O += P V
  }
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  for (int r = 0; r < 2; ++r) {
    if (qi[r] >= T) continue;
    const float inv = 1.0f / l[r];
    __nv_bfloat16* orow = o + (((size_t)b * T + qi[r]) * H + h) * HD;
    for (int n = 0; n < HD / 8; ++n)
      *reinterpret_cast<__nv_bfloat162*>(orow + n * 8 + 2 * t) =
          __floats2bfloat162_rn(acc[n][2 * r] * inv, acc[n][2 * r + 1] * inv);
    if (t == 0) lse[((size_t)b * H + h) * T + qi[r]] = (m[r] + log2f(l[r])) * 0.6931471805599453f;
  }
}

template <int HD, bool kDrop>
void launch_forward(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                    int H, int KV, float p, uint64_t seed) {
  const dim3 grid((T + kTile - 1) / kTile, H, B);
  const float scale_log2 = kLog2e / sqrtf((float)HD);
  flash_forward_kernel<HD, kDrop><<<grid, kThreads, 0, stream_of(ctx)>>>(dev(o), lse, dev(q), dev(k), dev(v), T, H,
                                                                         KV, scale_log2, p, seed);
  check_last_launch("attention_forward");
}

template <int HD>
void launch_forward(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                    int H, int KV, float p, uint64_t seed) {
  if (p > 0.0f)
    launch_forward<HD, true>(ctx, o, lse, q, k, v, B, T, H, KV, p, seed);
  else
    launch_forward<HD, false>(ctx, o, lse, q, k, v, B, T, H, KV, p, seed);
}

}  // namespace

void attention_forward(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                       int H, int KV, int hd, float p, uint64_t seed, AttentionKernels kernels) {
  OB_CHECK(B > 0 && T > 0 && H > 0 && KV > 0 && H % KV == 0, "attention_forward: bad shape B=", B, " T=", T, " H=", H,
           " KV=", KV);
  OB_CHECK(p >= 0.0f && p < 1.0f, "attention_forward: dropout ", p, " is outside [0, 1)");
  OB_CHECK(T <= 65535 * kTile && H <= 65535 && B <= 65535, "attention_forward: shape too large");
  if (hd != 64 && hd != 128) return attention_forward_generic(ctx, o, lse, q, k, v, B, T, H, KV, hd, p, seed);
  OB_CHECK(((uintptr_t)q | (uintptr_t)k | (uintptr_t)v) % 16 == 0, "attention_forward: q/k/v not 16-byte aligned");
  // Auto: v4's forward (TMA and wgmma, 1.46x v2's at the 125m shape on the H200), which is v2's with dropout,
  // at head_dim 128 or without Hopper.
  if (kernels == AttentionKernels::V4 || kernels == AttentionKernels::Auto)
    return attention_forward_v4(ctx, o, lse, q, k, v, B, T, H, KV, hd, p, seed);
  if (kernels != AttentionKernels::V1) return attention_forward_v2(  // V2, and V3's forward is V2's
      ctx, o, lse, q, k, v, B, T, H, KV, hd, p, seed);
  if (hd == 64)
    launch_forward<64>(ctx, o, lse, q, k, v, B, T, H, KV, p, seed);
  else
    launch_forward<128>(ctx, o, lse, q, k, v, B, T, H, KV, p, seed);
}

}  // namespace onebit::kernels::cuda
