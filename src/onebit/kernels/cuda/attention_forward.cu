// Flash attention forward (FlashAttention-2 schedule): one block per (64 queries, head, batch), key
// tiles streamed through shared memory, online softmax in f32 (base-2 exponentials of pre-scaled
// scores), bf16 tensor-core products. Saves only O and the per-row natural log-sum-exp.
#include "onebit/kernels/cuda/attention_tiles.cuh"

namespace onebit::kernels::cuda {
namespace {

using namespace attn;

template <int HD>
struct FwdSmem {
  static constexpr size_t q = 0;
  static constexpr size_t k = q + sizeof(__nv_bfloat16) * kTile * ld_h<HD>();
  static constexpr size_t v = k + sizeof(__nv_bfloat16) * kTile * ld_h<HD>();
  static constexpr size_t s = v + sizeof(__nv_bfloat16) * kTile * ld_h<HD>();
  static constexpr size_t p = s + sizeof(float) * kTile * kLdS;
  static constexpr size_t o = p + sizeof(__nv_bfloat16) * kTile * kLdP;
  static constexpr size_t stats = o + sizeof(float) * kTile * (HD + 4);
  static constexpr size_t bytes = stats + sizeof(float) * 2 * kTile;
};

template <int HD>
__global__ void __launch_bounds__(kThreads) flash_forward_kernel(__nv_bfloat16* o, float* lse, const __nv_bfloat16* q,
                                                                 const __nv_bfloat16* k, const __nv_bfloat16* v, int T,
                                                                 int H, int KV, float scale_log2) {
  extern __shared__ __align__(128) unsigned char smem[];
  using L = FwdSmem<HD>;
  auto* sQ = reinterpret_cast<__nv_bfloat16*>(smem + L::q);
  auto* sK = reinterpret_cast<__nv_bfloat16*>(smem + L::k);
  auto* sV = reinterpret_cast<__nv_bfloat16*>(smem + L::v);
  auto* sS = reinterpret_cast<float*>(smem + L::s);
  auto* sP = reinterpret_cast<__nv_bfloat16*>(smem + L::p);
  auto* sO = reinterpret_cast<float*>(smem + L::o);
  auto* sM = reinterpret_cast<float*>(smem + L::stats);
  float* sL = sM + kTile;
  constexpr int ldo = HD + 4;

  const int q0 = blockIdx.x * kTile, h = blockIdx.y, b = blockIdx.z, kh = h / (H / KV);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const size_t q_stride = (size_t)H * HD, kv_stride = (size_t)KV * HD;
  const __nv_bfloat16* qb = q + ((size_t)b * T * H + h) * HD;
  const __nv_bfloat16* kb = k + ((size_t)b * T * KV + kh) * HD;
  const __nv_bfloat16* vb = v + ((size_t)b * T * KV + kh) * HD;

  load_tile<HD>(sQ, qb, q0, T, q_stride);
  for (int i = threadIdx.x; i < kTile * ldo; i += blockDim.x) sO[i] = 0.0f;
  if (threadIdx.x < kTile) {
    sM[threadIdx.x] = -INFINITY;
    sL[threadIdx.x] = 0.0f;
  }
  const int last = min(T - 1, q0 + kTile - 1);  // the last key any row of this tile sees
  for (int j0 = 0; j0 <= last; j0 += kTile) {
    __syncthreads();  // the previous tile's products are done with sK / sV / sP
    load_tile<HD>(sK, kb, j0, T, kv_stride);
    load_tile<HD>(sV, vb, j0, T, kv_stride);
    __syncthreads();
    warp_abt<HD>(sS, sQ, sK, warp);
    __syncwarp();
    // Online softmax over this warp's 16 rows; each lane takes columns lane and lane + 32.
    for (int rr = 0; rr < 16; ++rr) {
      const int r = warp * 16 + rr, qi = q0 + r;
      float s[2];
      float mx = -INFINITY;
      for (int u = 0; u < 2; ++u) {
        const int c = lane + 32 * u, kj = j0 + c;
        s[u] = (kj <= qi && kj < T && qi < T) ? sS[r * kLdS + c] * scale_log2 : -INFINITY;
        mx = fmaxf(mx, s[u]);
      }
      mx = warp_max(mx);
      const float m_old = sM[r], m_new = fmaxf(m_old, mx);
      float psum = 0.0f;
      for (int u = 0; u < 2; ++u) {
        const float p = m_new == -INFINITY ? 0.0f : exp2f(s[u] - m_new);
        psum += p;
        sP[r * kLdP + lane + 32 * u] = __float2bfloat16_rn(p);
      }
      psum = warp_sum(psum);
      const float alpha = m_old == -INFINITY ? 0.0f : exp2f(m_old - m_new);
      for (int c = lane; c < HD; c += 32) sO[r * ldo + c] *= alpha;
      __syncwarp();
      if (lane == 0) {
        sM[r] = m_new;
        sL[r] = sL[r] * alpha + psum;
      }
    }
    __syncwarp();
    // O[warp rows] += P[warp rows][64] · V[64][HD]
    for (int n = 0; n < HD / 16; ++n) {
      FragC acc;
      wmma::load_matrix_sync(acc, sO + warp * 16 * ldo + n * 16, ldo, wmma::mem_row_major);
      for (int kk = 0; kk < kTile / 16; ++kk) {
        FragA a;
        FragB bv;
        wmma::load_matrix_sync(a, sP + warp * 16 * kLdP + kk * 16, kLdP);
        wmma::load_matrix_sync(bv, sV + kk * 16 * ld_h<HD>() + n * 16, ld_h<HD>());
        wmma::mma_sync(acc, a, bv, acc);
      }
      wmma::store_matrix_sync(sO + warp * 16 * ldo + n * 16, acc, ldo, wmma::mem_row_major);
    }
  }
  __syncthreads();
  for (int rr = 0; rr < 16; ++rr) {
    const int r = warp * 16 + rr, qi = q0 + r;
    if (qi >= T) break;
    const float l = sL[r], inv = 1.0f / l;
    __nv_bfloat16* orow = o + (((size_t)b * T + qi) * H + h) * HD;
    for (int c = lane; c < HD; c += 32) orow[c] = __float2bfloat16_rn(sO[r * ldo + c] * inv);
    if (lane == 0) lse[((size_t)b * H + h) * T + qi] = (sM[r] + log2f(l)) * 0.6931471805599453f;
  }
}

template <int HD>
void launch_forward(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                    int H, int KV) {
  constexpr size_t bytes = FwdSmem<HD>::bytes;
  OB_CUDA(cudaFuncSetAttribute(flash_forward_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
  const dim3 grid((T + kTile - 1) / kTile, H, B);
  const float scale_log2 = kLog2e / sqrtf((float)HD);
  flash_forward_kernel<HD><<<grid, kThreads, bytes, stream_of(ctx)>>>(dev(o), lse, dev(q), dev(k), dev(v), T, H, KV,
                                                                      scale_log2);
  check_last_launch("attention_forward");
}

}  // namespace

void attention_forward(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                       int H, int KV, int hd) {
  OB_CHECK(B > 0 && T > 0 && H > 0 && KV > 0 && H % KV == 0, "attention_forward: bad shape B=", B, " T=", T, " H=", H,
           " KV=", KV);
  OB_CHECK(T <= 65535 * kTile && H <= 65535 && B <= 65535, "attention_forward: shape too large");
  OB_CHECK(((uintptr_t)q | (uintptr_t)k | (uintptr_t)v) % 16 == 0, "attention_forward: q/k/v not 16-byte aligned");
  if (hd == 64)
    launch_forward<64>(ctx, o, lse, q, k, v, B, T, H, KV);
  else if (hd == 128)
    launch_forward<128>(ctx, o, lse, q, k, v, B, T, H, KV);
  else
    fail("attention_forward: head_dim ", hd, " is not supported (64 or 128)");
}

}  // namespace onebit::kernels::cuda
