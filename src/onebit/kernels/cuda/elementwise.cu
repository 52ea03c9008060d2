// Elementwise kernels: RoPE, gated MLP activations, the residual branch with dropout. f32 math on
// bf16 storage, the formulas of reference.h.
#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kThreads = 256;

// kernels::dropout_factor (kernels.h) is a host-only inline function; this is the same counter-based
// hash bit for bit (tests/cuda checks every mask against it), so CPU and GPU drop the same elements.
__device__ inline float dropout_factor_dev(uint64_t seed, uint64_t i, float p) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
  return u >= p ? 1.0f / (1.0f - p) : 0.0f;
}

__global__ void rope_kernel(__nv_bfloat16* x, const float* cosv, const float* sinv, int T, int H, int hd,
                            size_t pairs, bool inverse) {
  const int half = hd / 2;
  for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < pairs;
       idx += (size_t)gridDim.x * blockDim.x) {
    const int i = (int)(idx % half);
    const size_t vec = idx / half;  // (b, t, h)
    const int t = (int)((vec / H) % T);
    __nv_bfloat16* v = x + vec * hd;
    const float c = cosv[(size_t)t * half + i], s0 = sinv[(size_t)t * half + i], s = inverse ? -s0 : s0;
    const float a = __bfloat162float(v[i]), b = __bfloat162float(v[i + half]);
    v[i] = __float2bfloat16_rn(a * c - b * s);
    v[i + half] = __float2bfloat16_rn(b * c + a * s);
  }
}

__device__ inline void gated_value(float g, GatedAct act, float& f, float& df) {
  switch (act) {
    case GatedAct::SwiGLU: {
      const float sg = 1.0f / (1.0f + expf(-g));
      f = g * sg;
      df = sg * (1.0f + g * (1.0f - sg));
      return;
    }
    case GatedAct::ReLU2: {
      const float r = g > 0.0f ? g : 0.0f;
      f = r * r;
      df = 2.0f * r;
      return;
    }
    case GatedAct::GELU: {
      const float c = 0.7978845608028654f, a = 0.044715f;
      const float th = tanhf(c * (g + a * g * g * g));
      f = 0.5f * g * (1.0f + th);
      df = 0.5f * (1.0f + th) + 0.5f * g * (1.0f - th * th) * c * (1.0f + 3.0f * a * g * g);
      return;
    }
  }
}

__global__ void gated_forward_kernel(__nv_bfloat16* out, const __nv_bfloat16* gate, const __nv_bfloat16* up,
                                     size_t n, GatedAct act) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float f, df;
    gated_value(__bfloat162float(gate[i]), act, f, df);
    out[i] = __float2bfloat16_rn(f * __bfloat162float(up[i]));
  }
}

__global__ void gated_backward_kernel(__nv_bfloat16* dgate, __nv_bfloat16* dup, const __nv_bfloat16* dout,
                                      const __nv_bfloat16* gate, const __nv_bfloat16* up, size_t n, GatedAct act) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float f, df;
    gated_value(__bfloat162float(gate[i]), act, f, df);
    const float d = __bfloat162float(dout[i]);
    dgate[i] = __float2bfloat16_rn(d * __bfloat162float(up[i]) * df);
    dup[i] = __float2bfloat16_rn(d * f);
  }
}

// Products and sum rounded separately (no fused multiply-add): the value of the plain C++
// expression, whatever the CUDA compiler would contract.
__global__ void residual_forward_kernel(__nv_bfloat16* out, const __nv_bfloat16* x, const __nv_bfloat16* y,
                                        float scale, float p, uint64_t seed, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float m = p > 0.0f ? dropout_factor_dev(seed, i, p) : 1.0f;
    out[i] = __float2bfloat16_rn(
        __fadd_rn(__bfloat162float(x[i]), __fmul_rn(__fmul_rn(scale, m), __bfloat162float(y[i]))));
  }
}

__global__ void residual_backward_kernel(__nv_bfloat16* dy, const __nv_bfloat16* dout, float scale, float p,
                                         uint64_t seed, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float m = p > 0.0f ? dropout_factor_dev(seed, i, p) : 1.0f;
    dy[i] = __float2bfloat16_rn(__fmul_rn(__fmul_rn(scale, m), __bfloat162float(dout[i])));
  }
}

}  // namespace

void rope(Context& ctx, bf16* x, const float* cos, const float* sin, int B, int T, int H, int hd, bool inverse) {
  OB_CHECK(hd % 2 == 0, "rope: head_dim ", hd, " is odd");
  const size_t pairs = (size_t)B * T * H * (hd / 2);
  if (pairs == 0) return;
  rope_kernel<<<blocks_for(pairs, kThreads), kThreads, 0, stream_of(ctx)>>>(dev(x), cos, sin, T, H, hd, pairs, inverse);
  check_last_launch("rope");
}

void gated_act_forward(Context& ctx, bf16* out, const bf16* gate, const bf16* up, size_t n, GatedAct act) {
  if (n == 0) return;
  gated_forward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream_of(ctx)>>>(dev(out), dev(gate), dev(up), n, act);
  check_last_launch("gated_act_forward");
}

void gated_act_backward(Context& ctx, bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up,
                        size_t n, GatedAct act) {
  if (n == 0) return;
  gated_backward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream_of(ctx)>>>(dev(dgate), dev(dup), dev(dout),
                                                                                  dev(gate), dev(up), n, act);
  check_last_launch("gated_act_backward");
}

void residual_forward(Context& ctx, bf16* out, const bf16* x, const bf16* y, float scale, float p, uint64_t seed,
                      size_t n) {
  if (n == 0) return;
  residual_forward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream_of(ctx)>>>(dev(out), dev(x), dev(y), scale,
                                                                                    p, seed, n);
  check_last_launch("residual_forward");
}

void residual_backward(Context& ctx, bf16* dy, const bf16* dout, float scale, float p, uint64_t seed, size_t n) {
  if (n == 0) return;
  residual_backward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream_of(ctx)>>>(dev(dy), dev(dout), scale, p,
                                                                                     seed, n);
  check_last_launch("residual_backward");
}

}  // namespace onebit::kernels::cuda
