// RMSNorm forward (fused with the per-token int8 activation quantization of its output) and backward,
// one warp per row (rows are 64..4096 wide: hidden sizes and, for QK-norm, head_dim). The weight
// gradient is a column reduction in fixed row chunks, so it is deterministic.
#include <algorithm>

#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kWarps = 8;

__device__ inline float quant_int8(float y, float s) { return fminf(fmaxf(rintf(y * s), -128.0f), 127.0f) / s; }

__global__ void rmsnorm_forward_kernel(__nv_bfloat16* out, __nv_bfloat16* out_q, float* rstd, const __nv_bfloat16* x,
                                       const float* w, int N, int C, float eps) {
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const __nv_bfloat16* xr = x + (size_t)row * C;
  float ss = 0;
  for (int c = lane; c < C; c += 32) {
    const float v = __bfloat162float(xr[c]);
    ss += v * v;
  }
  ss = warp_sum(ss);
  const float r = 1.0f / sqrtf(ss / (float)C + eps);
  if (lane == 0) rstd[row] = r;
  float m = 0;
  for (int c = lane; c < C; c += 32) {
    const float y = __bfloat162float(xr[c]) * r * w[c];
    out[(size_t)row * C + c] = __float2bfloat16_rn(y);
    m = fmaxf(m, fabsf(y));
  }
  if (!out_q) return;
  m = warp_max(m);
  const float s = 127.0f / fmaxf(m, 1e-5f);
  for (int c = lane; c < C; c += 32) {
    const float y = __bfloat162float(xr[c]) * r * w[c];  // the f32 value, as the CPU path quantizes
    out_q[(size_t)row * C + c] = __float2bfloat16_rn(quant_int8(y, s));
  }
}

__global__ void act_quant_kernel(__nv_bfloat16* out, const __nv_bfloat16* x, int N, int C) {
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  float m = 0;
  for (int c = lane; c < C; c += 32) m = fmaxf(m, fabsf(__bfloat162float(x[(size_t)row * C + c])));
  m = warp_max(m);
  const float s = 127.0f / fmaxf(m, 1e-5f);
  for (int c = lane; c < C; c += 32)
    out[(size_t)row * C + c] = __float2bfloat16_rn(quant_int8(__bfloat162float(x[(size_t)row * C + c]), s));
}

__global__ void rmsnorm_dx_kernel(__nv_bfloat16* dx, const __nv_bfloat16* dout, const __nv_bfloat16* x, const float* w,
                                  const float* rstd, int N, int C) {
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const size_t off = (size_t)row * C;
  const float r = rstd[row];
  float dot = 0;
  for (int c = lane; c < C; c += 32)
    dot += __bfloat162float(dout[off + c]) * w[c] * (__bfloat162float(x[off + c]) * r);
  dot = warp_sum(dot) / (float)C;
  for (int c = lane; c < C; c += 32) {
    const float xhat = __bfloat162float(x[off + c]) * r;
    const float d = r * (__bfloat162float(dout[off + c]) * w[c] - xhat * dot);
    dx[off + c] = __float2bfloat16_rn(__bfloat162float(dx[off + c]) + d);
  }
}

// partial[chunk, c] = sum over this chunk's rows of dout * x * rstd; block (32 columns, 8 row lanes).
__global__ void rmsnorm_dw_partial_kernel(float* partial, const __nv_bfloat16* dout, const __nv_bfloat16* x,
                                          const float* rstd, int N, int C, int rows_per_chunk) {
  __shared__ float sh[8][33];
  const int c = blockIdx.x * 32 + threadIdx.x, chunk = blockIdx.y;
  const int r0 = chunk * rows_per_chunk, r1 = min(N, r0 + rows_per_chunk);
  float acc = 0;
  if (c < C)
    for (int n = r0 + threadIdx.y; n < r1; n += 8)
      acc += __bfloat162float(dout[(size_t)n * C + c]) * (__bfloat162float(x[(size_t)n * C + c]) * rstd[n]);
  sh[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float s = 0;
    for (int i = 0; i < 8; ++i) s += sh[i][threadIdx.x];
    partial[(size_t)chunk * C + c] = s;
  }
}

// dw[c] += sum over chunks of partial[chunk, c]: 8 row lanes per column each fold every 8th chunk,
// then the 8 lane sums are added in lane order (a fixed order: deterministic).
__global__ void rmsnorm_dw_final_kernel(float* dw, const float* partial, int chunks, int C) {
  __shared__ float sh[8][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  float s = 0;
  if (c < C)
    for (int i = threadIdx.y; i < chunks; i += 8) s += partial[(size_t)i * C + c];
  sh[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float total = 0;
    for (int i = 0; i < 8; ++i) total += sh[i][threadIdx.x];
    dw[c] += total;
  }
}

unsigned row_blocks(int N) { return (unsigned)((N + kWarps - 1) / kWarps); }

}  // namespace

void rmsnorm_forward(Context& ctx, bf16* out, bf16* out_q, float* rstd, const bf16* x, const float* w, int N, int C,
                     float eps) {
  OB_CHECK(N > 0 && C > 0, "rmsnorm_forward: empty shape");
  rmsnorm_forward_kernel<<<row_blocks(N), kWarps * 32, 0, stream_of(ctx)>>>(dev(out), out_q ? dev(out_q) : nullptr,
                                                                             rstd, dev(x), w, N, C, eps);
  check_last_launch("rmsnorm_forward");
}

void act_quant_int8(Context& ctx, bf16* out, const bf16* x, int N, int C) {
  OB_CHECK(N > 0 && C > 0, "act_quant_int8: empty shape");
  act_quant_kernel<<<row_blocks(N), kWarps * 32, 0, stream_of(ctx)>>>(dev(out), dev(x), N, C);
  check_last_launch("act_quant_int8");
}

void rmsnorm_backward(Context& ctx, bf16* dx, float* dw, const bf16* dout, const bf16* x, const float* w,
                      const float* rstd, int N, int C) {
  OB_CHECK(N > 0 && C > 0, "rmsnorm_backward: empty shape");
  cudaStream_t st = stream_of(ctx);
  rmsnorm_dx_kernel<<<row_blocks(N), kWarps * 32, 0, st>>>(dev(dx), dev(dout), dev(x), w, rstd, N, C);
  // About 1024 blocks of (32 columns x a row chunk) fill the GPU at any C; rows_per_chunk >= 8.
  const int col_blocks = (C + 31) / 32;
  const int chunks = std::max(1, std::min((N + 7) / 8, 1024 / col_blocks));
  const int rows_per_chunk = (N + chunks - 1) / chunks;
  const int used = (N + rows_per_chunk - 1) / rows_per_chunk;
  auto* partial = static_cast<float*>(ctx.scratch(sizeof(float) * (size_t)used * C));
  rmsnorm_dw_partial_kernel<<<dim3(col_blocks, used), dim3(32, 8), 0, st>>>(partial, dev(dout), dev(x), rstd, N, C,
                                                                            rows_per_chunk);
  rmsnorm_dw_final_kernel<<<col_blocks, dim3(32, 8), 0, st>>>(dw, partial, used, C);
  check_last_launch("rmsnorm_backward");
}

}  // namespace onebit::kernels::cuda
