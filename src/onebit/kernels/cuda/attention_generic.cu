// Generic-head-dim attention (attention_generic.cuh): warp-per-row kernels, f32 math on bf16 data.
#include "onebit/kernels/cuda/attention_generic.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kPer = kGenericMaxHeadDim / 32;  // elements of a row per lane

__device__ inline void load_row(float (&r)[kPer], const __nv_bfloat16* p, int hd, int lane) {
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + 32 * i;
    r[i] = d < hd ? __bfloat162float(p[d]) : 0.0f;
  }
}

__device__ inline float dot_row(const float (&a)[kPer], const __nv_bfloat16* p, int hd, int lane) {
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) s += a[i] * __bfloat162float(p[d]);
  }
  return warp_sum(s);
}

// grid (T, H, B), one warp: query row t of head h.
// Dropout (p > 0): the probability of key j enters the output times dropout_factor(seed, drop_row + j, p)
// and the normaliser without it.
__global__ void forward_kernel(__nv_bfloat16* o, float* lse, const __nv_bfloat16* q, const __nv_bfloat16* k,
                               const __nv_bfloat16* v, int T, int H, int KV, int hd, float scale, float p_drop,
                               uint64_t seed) {
  const int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, kh = h / (H / KV), lane = threadIdx.x;
  float qr[kPer], acc[kPer];
  load_row(qr, q + (((size_t)b * T + t) * H + h) * hd, hd, lane);
#pragma unroll
  for (int i = 0; i < kPer; ++i) acc[i] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  const uint64_t drop_row = (((uint64_t)b * H + h) * T + t) * T;
  for (int j = 0; j <= t; ++j) {
    const size_t kv = (((size_t)b * T + j) * KV + kh) * hd;
    const float s = dot_row(qr, k + kv, hd, lane) * scale;
    const float mn = fmaxf(m, s), corr = expf(m - mn);
    float p = expf(s - mn);
    l = l * corr + p;
    if (p_drop > 0.0f) p *= dropout_factor(seed, drop_row + j, p_drop);
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int d = lane + 32 * i;
      acc[i] = acc[i] * corr + (d < hd ? p * __bfloat162float(v[kv + d]) : 0.0f);
    }
    m = mn;
  }
  __nv_bfloat16* orow = o + (((size_t)b * T + t) * H + h) * hd;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) orow[d] = __float2bfloat16_rn(acc[i] / l);
  }
  if (lane == 0) lse[((size_t)b * H + h) * T + t] = m + logf(l);
}

// grid (T, H, B), one warp: dq of query row t, head h.
__global__ void dq_kernel(__nv_bfloat16* dq, const __nv_bfloat16* dout, const __nv_bfloat16* q,
                          const __nv_bfloat16* k, const __nv_bfloat16* v, const float* lse, const float* D, int T,
                          int H, int KV, int hd, float scale, float p_drop, uint64_t seed) {
  const int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, kh = h / (H / KV), lane = threadIdx.x;
  const uint64_t drop_row = (((uint64_t)b * H + h) * T + t) * T;
  const size_t row = ((size_t)b * T + t) * H + h;
  float qr[kPer], dor[kPer], acc[kPer];
  load_row(qr, q + row * hd, hd, lane);
  load_row(dor, dout + row * hd, hd, lane);
#pragma unroll
  for (int i = 0; i < kPer; ++i) acc[i] = 0.0f;
  const float L = lse[((size_t)b * H + h) * T + t], Di = D[((size_t)b * H + h) * T + t];
  for (int j = 0; j <= t; ++j) {
    const size_t kv = (((size_t)b * T + j) * KV + kh) * hd;
    const float p = expf(dot_row(qr, k + kv, hd, lane) * scale - L);
    const float z = p_drop > 0.0f ? dropout_factor(seed, drop_row + j, p_drop) : 1.0f;
    const float ds = p * (z * dot_row(dor, v + kv, hd, lane) - Di) * scale;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) acc[i] += ds * __bfloat162float(k[kv + d]);
    }
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) dq[row * hd + d] = __float2bfloat16_rn(acc[i]);
  }
}

// grid (T, KV, B), one warp: dk and dv of key row j, kv head kh, summed over its query heads and rows.
__global__ void dkdv_kernel(__nv_bfloat16* dk, __nv_bfloat16* dv, const __nv_bfloat16* dout, const __nv_bfloat16* q,
                            const __nv_bfloat16* k, const __nv_bfloat16* v, const float* lse, const float* D, int T,
                            int H, int KV, int hd, float scale, float p_drop, uint64_t seed, int ld_dv) {
  const int j = blockIdx.x, kh = blockIdx.y, b = blockIdx.z, lane = threadIdx.x, group = H / KV;
  const size_t kv = (((size_t)b * T + j) * KV + kh) * hd;
  float kr[kPer], vr[kPer], dka[kPer], dva[kPer];
  load_row(kr, k + kv, hd, lane);
  load_row(vr, v + kv, hd, lane);
#pragma unroll
  for (int i = 0; i < kPer; ++i) dka[i] = dva[i] = 0.0f;
  for (int h = kh * group; h < (kh + 1) * group; ++h) {
    for (int t = j; t < T; ++t) {
      const size_t row = ((size_t)b * T + t) * H + h;
      const size_t stat = ((size_t)b * H + h) * T + t;
      const float p = expf(dot_row(kr, q + row * hd, hd, lane) * scale - lse[stat]);
      const float z = p_drop > 0.0f ? dropout_factor(seed, (uint64_t)stat * T + j, p_drop) : 1.0f;
      const float ds = p * (z * dot_row(vr, dout + row * hd, hd, lane) - D[stat]) * scale;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int d = lane + 32 * i;
        if (d < hd) {
          dva[i] += p * z * __bfloat162float(dout[row * hd + d]);
          dka[i] += ds * __bfloat162float(q[row * hd + d]);
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) {
      dk[kv + d] = __float2bfloat16_rn(dka[i]);
      dv[((size_t)b * T + j) * ld_dv + (size_t)kh * hd + d] = __float2bfloat16_rn(dva[i]);
    }
  }
}

}  // namespace

void attention_forward_generic(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B,
                               int T, int H, int KV, int hd, float p, uint64_t seed) {
  OB_CHECK(hd > 0 && hd <= kGenericMaxHeadDim, "attention: head_dim ", hd, " is not supported (at most ",
           kGenericMaxHeadDim, ")");
  OB_CHECK(T <= 0x7fffffff && H <= 65535 && B <= 65535, "attention: shape too large");
  forward_kernel<<<dim3(T, H, B), 32, 0, stream_of(ctx)>>>(dev(o), lse, dev(q), dev(k), dev(v), T, H, KV, hd,
                                                           1.0f / sqrtf((float)hd), p, seed);
  check_last_launch("attention_forward (generic head_dim)");
}

void attention_backward_generic(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q,
                                const bf16* k, const bf16* v, const float* lse, const float* D, int B, int T, int H,
                                int KV, int hd, float p, uint64_t seed, int ld_dv) {
  OB_CHECK(hd > 0 && hd <= kGenericMaxHeadDim, "attention: head_dim ", hd, " is not supported (at most ",
           kGenericMaxHeadDim, ")");
  const float scale = 1.0f / sqrtf((float)hd);
  cudaStream_t st = stream_of(ctx);
  dq_kernel<<<dim3(T, H, B), 32, 0, st>>>(dev(dq), dev(dout), dev(q), dev(k), dev(v), lse, D, T, H, KV, hd, scale, p,
                                          seed);
  dkdv_kernel<<<dim3(T, KV, B), 32, 0, st>>>(dev(dk), dev(dv), dev(dout), dev(q), dev(k), dev(v), lse, D, T, H, KV,
                                             hd, scale, p, seed, ld_dv);
  check_last_launch("attention_backward (generic head_dim)");
}

}  // namespace onebit::kernels::cuda
