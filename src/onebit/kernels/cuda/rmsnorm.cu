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


// The fused backward for rows of C = 8 * vectors (C <= 1024, rows 16-byte aligned): each row is held
// in registers by a group of G lanes (16-byte loads of 8 bf16), which computes dx and adds the row's
// dout * xhat to per-lane dw accumulators; a block's accumulators are summed in a fixed order into
// partial[block, C] (then folded by rmsnorm_dw_final_kernel), so the result is deterministic. VPL
// is the number of 8-wide vectors per lane.
template <int VPL>
__global__ void __launch_bounds__(kWarps * 32) rmsnorm_backward_vec_kernel(
    __nv_bfloat16* dx, float* partial, const __nv_bfloat16* dout, const __nv_bfloat16* x, const float* w,
    const float* rstd, int N, int C, int G, int rows_per_block) {
  extern __shared__ float sdw[];  // [kWarps * (32 / G)][C]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, R = 32 / G, grp = lane / G, gl = lane % G;
  const int nvec = C / 8;
  const int r0 = blockIdx.x * rows_per_block, r1 = min(N, r0 + rows_per_block);
  float wr[VPL][8], acc[VPL][8];
#pragma unroll
  for (int j = 0; j < VPL; ++j) {
    const int v = gl + G * j;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      wr[j][e] = v < nvec ? w[v * 8 + e] : 0.0f;
      acc[j][e] = 0.0f;
    }
  }
  for (int base = r0 + warp * R; base < r1; base += kWarps * R) {  // warp-uniform: every lane shuffles
    const int row = base + grp;
    const bool live = row < r1;
    const size_t off = (size_t)(live ? row : r0) * C;
    float dy[VPL][8], xh[VPL][8];
    const float r = live ? rstd[row] : 0.0f;
    float dot = 0.0f;
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
      const int v = gl + G * j;
      if (live && v < nvec) {
        const uint4 a = *reinterpret_cast<const uint4*>(dout + off + v * 8);
        const uint4 b = *reinterpret_cast<const uint4*>(x + off + v * 8);
        const __nv_bfloat16* pa = reinterpret_cast<const __nv_bfloat16*>(&a);
        const __nv_bfloat16* pb = reinterpret_cast<const __nv_bfloat16*>(&b);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          dy[j][e] = __bfloat162float(pa[e]);
          xh[j][e] = __bfloat162float(pb[e]) * r;
          dot += dy[j][e] * wr[j][e] * xh[j][e];
        }
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) dy[j][e] = xh[j][e] = 0.0f;
      }
    }
    for (int o = G / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    dot /= (float)C;
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
      const int v = gl + G * j;
      if (!live || v >= nvec) continue;
      uint4 old = *reinterpret_cast<const uint4*>(dx + off + v * 8);
      __nv_bfloat16* po = reinterpret_cast<__nv_bfloat16*>(&old);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float d = r * (dy[j][e] * wr[j][e] - xh[j][e] * dot);
        po[e] = __float2bfloat16_rn(__bfloat162float(po[e]) + d);
        acc[j][e] += dy[j][e] * xh[j][e];
      }
      *reinterpret_cast<uint4*>(dx + off + v * 8) = old;
    }
  }
  // This block's dw: the kWarps * R lane groups' sums, added in group order.
  float* mine = sdw + (size_t)(warp * R + grp) * C;
#pragma unroll
  for (int j = 0; j < VPL; ++j) {
    const int v = gl + G * j;
    if (v < nvec)
#pragma unroll
      for (int e = 0; e < 8; ++e) mine[v * 8 + e] = acc[j][e];
  }
  __syncthreads();
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float t = 0.0f;
    for (int i = 0; i < kWarps * R; ++i) t += sdw[(size_t)i * C + c];
    partial[(size_t)blockIdx.x * C + c] = t;
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

namespace {

template <int VPL>
void launch_backward_vec(Context& ctx, bf16* dx, float* dw, const bf16* dout, const bf16* x, const float* w,
                         const float* rstd, int N, int C) {
  const int nvec = C / 8;
  int G = 1;
  while (G < nvec && G < 32) G <<= 1;
  const int R = 32 / G;
  // About four blocks per SM, each a contiguous run of rows.
  const int rows_per_unit = kWarps * R;
  const int blocks = std::max(1, std::min((N + rows_per_unit - 1) / rows_per_unit, 132 * 4));
  const int rows_per_block = (N + blocks - 1) / blocks;
  const int used = (N + rows_per_block - 1) / rows_per_block;
  const size_t smem = sizeof(float) * (size_t)kWarps * R * C;
  auto* partial = static_cast<float*>(ctx.scratch(sizeof(float) * (size_t)used * C));
  cudaStream_t st = stream_of(ctx);
  if (smem > 48 * 1024)
    OB_CUDA(cudaFuncSetAttribute(rmsnorm_backward_vec_kernel<VPL>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)smem));
  rmsnorm_backward_vec_kernel<VPL><<<used, kWarps * 32, smem, st>>>(dev(dx), partial, dev(dout), dev(x), w, rstd, N, C,
                                                                    G, rows_per_block);
  rmsnorm_dw_final_kernel<<<(C + 31) / 32, dim3(32, 8), 0, st>>>(dw, partial, used, C);
  check_last_launch("rmsnorm_backward");
}

}  // namespace

void rmsnorm_backward(Context& ctx, bf16* dx, float* dw, const bf16* dout, const bf16* x, const float* w,
                      const float* rstd, int N, int C) {
  OB_CHECK(N > 0 && C > 0, "rmsnorm_backward: empty shape");
  const bool aligned = ((uintptr_t)dx | (uintptr_t)dout | (uintptr_t)x) % 16 == 0;
  if (aligned && C % 8 == 0 && C <= 1024) {
    const int vpl = (C / 8 + 31) / 32;  // vectors per lane once a row spans all 32 lanes
    if (vpl <= 1) return launch_backward_vec<1>(ctx, dx, dw, dout, x, w, rstd, N, C);
    if (vpl == 2) return launch_backward_vec<2>(ctx, dx, dw, dout, x, w, rstd, N, C);
    if (vpl == 3) return launch_backward_vec<3>(ctx, dx, dw, dout, x, w, rstd, N, C);
    return launch_backward_vec<4>(ctx, dx, dw, dout, x, w, rstd, N, C);
  }
  // Any other width: a warp per row for dx, then the column reduction in fixed row chunks.
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
