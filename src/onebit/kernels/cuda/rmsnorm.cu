// RMSNorm forward (fused with the per-token int8 activation quantization of its output) and backward,
// one warp per row (rows are 64..4096 wide: hidden sizes and, for QK-norm, head_dim). The weight
// gradient is a column reduction in fixed row chunks, so it is deterministic.
#include <algorithm>
#include <initializer_list>
#include <type_traits>

#include "onebit/kernels/cuda/common.cuh"
#include "onebit/kernels/cuda/gated.cuh"
#include "onebit/kernels/cuda/row_groups.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kWarps = 8;

__global__ void rmsnorm_forward_kernel(__nv_bfloat16* out, __nv_bfloat16* out_q, float* rstd, const __nv_bfloat16* x,
                                       const float* w, int N, int C, float eps, Int8Rows codes) {
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
    out_q[(size_t)row * C + c] = __float2bfloat16_rn(rows::quant_int8(y, s));
    if (codes.codes) codes.codes[(size_t)row * C + c] = (int8_t)rows::int8_code(y, s);
  }
  if (codes.factor && lane == 0) codes.factor[row] = rows::code_factor(m);
}

// The forward with each row in registers (see row_groups.cuh): one read of x serves the sum of
// squares, the output and the absmax of the int8 quantization. C = 8 * nvec, 16-byte aligned rows.
// out may be null (only out_q is stored). Up to VPL 3 (C 768) four blocks per SM: at 76 registers (three blocks)
// the 125m forward moved ~37% of the bandwidth, its rows' loads waiting on the reductions of too few warps.
template <int VPL>
__global__ void __launch_bounds__(rows::kWarps * 32, VPL <= 3 ? 4 : 1) rmsnorm_forward_vec_kernel(
    __nv_bfloat16* out, __nv_bfloat16* out_q, float* rstd, const __nv_bfloat16* x, const float* w, int N, int C,
    float eps, Int8Rows codes) {
  const int nvec = C / 8, G = rows::group_lanes(nvec), R = 32 / G;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, grp = lane / G, gl = lane % G;
  for (int base = (blockIdx.x * rows::kWarps + warp) * R; base < N; base += gridDim.x * rows::kWarps * R) {
    const int row = base + grp;
    const bool live = row < N;
    const size_t off = (size_t)(live ? row : 0) * C;
    float v[VPL][8];
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
      const int vi = gl + G * j;
      if (live && vi < nvec) {
        load8(v[j], x + off + 8 * vi);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[j][e] = 0.0f;
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) ss += v[j][e] * v[j][e];
    }
    ss = rows::group_sum(ss, G);
    const float r = 1.0f / sqrtf(ss / (float)C + eps);
    if (live && gl == 0) rstd[row] = r;
    float m = 0.0f;
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
      const int vi = gl + G * j;
      if (vi >= nvec) continue;
      m = fmaxf(m, rows::scale8_absmax(v[j], r, w + 8 * vi));
      if (live && out) store8(out + off + 8 * vi, v[j]);
    }
    if (!out_q) continue;
    m = rows::group_max(m, G);
    const float s = 127.0f / fmaxf(m, 1e-5f);
    if (live && gl == 0 && codes.factor) codes.factor[row] = rows::code_factor(m);
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
      const int vi = gl + G * j;
      if (!live || vi >= nvec) continue;
      rows::store_quantized8(out_q + off + 8 * vi, codes.codes ? codes.codes + off + 8 * vi : nullptr, v[j], s);
    }
  }
}

template <int VPL>
__global__ void __launch_bounds__(rows::kWarps * 32) act_quant_vec_kernel(__nv_bfloat16* out, const __nv_bfloat16* x,
                                                                           int N, int C, Int8Rows codes) {
  const int nvec = C / 8, G = rows::group_lanes(nvec), R = 32 / G;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, grp = lane / G, gl = lane % G;
  for (int base = (blockIdx.x * rows::kWarps + warp) * R; base < N; base += gridDim.x * rows::kWarps * R) {
    const int row = base + grp;
    const bool live = row < N;
    const size_t off = (size_t)(live ? row : 0) * C;
    float v[VPL][8];
    float m = 0.0f;
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
      const int vi = gl + G * j;
      if (live && vi < nvec) {
        load8(v[j], x + off + 8 * vi);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[j][e] = 0.0f;
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) m = fmaxf(m, fabsf(v[j][e]));
    }
    m = rows::group_max(m, G);
    const float s = 127.0f / fmaxf(m, 1e-5f);
    if (live && gl == 0 && codes.factor) codes.factor[row] = rows::code_factor(m);
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
      const int vi = gl + G * j;
      if (!live || vi >= nvec) continue;
      if (codes.codes) rows::store_codes8(codes.codes + off + 8 * vi, v[j], s);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[j][e] = rows::quant_int8(v[j][e], s);
      store8(out + off + 8 * vi, v[j]);
    }
  }
}

// QK-norm then RoPE in one pass over [B, T, H, hd] rows (hd = 8 * G, G a power of two <= 32, one
// vector per lane): the partner of element i < hd/2 is i + hd/2, which lives G/2 lanes away. Rotates
// the f32 normalised values, so the only rounding is the output's.
__global__ void __launch_bounds__(rows::kWarps * 32) qk_norm_rope_forward_kernel(
    __nv_bfloat16* out, float* rstd, const __nv_bfloat16* x, const float* w, const float* cosv, const float* sinv,
    int N, int T, int H, int hd, float eps) {
  const int G = hd / 8, R = 32 / G, half = hd / 2;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, grp = lane / G, gl = lane % G;
  const bool first = gl < G / 2;
  const int i0 = (first ? gl : gl - G / 2) * 8;
  for (int base = (blockIdx.x * rows::kWarps + warp) * R; base < N; base += gridDim.x * rows::kWarps * R) {
    const int row = base + grp;
    const bool live = row < N;
    const size_t off = (size_t)(live ? row : 0) * hd;
    float v[8];
    if (live) {
      load8(v, x + off + 8 * gl);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] = 0.0f;
    }
    float ss = 0.0f;
#pragma unroll
    for (int e = 0; e < 8; ++e) ss += v[e] * v[e];
    ss = rows::group_sum(ss, G);
    const float r = 1.0f / sqrtf(ss / (float)hd + eps);
    if (live && gl == 0) rstd[row] = r;
    float wv[8], cp[8], sp[8];
    rows::load_f32x8(wv, w + 8 * gl);
#pragma unroll
    for (int e = 0; e < 8; ++e) v[e] = v[e] * r * wv[e];
    float o[8];
    const int t = live ? (row / H) % T : 0;
    rows::load_f32x8(cp, cosv + (size_t)t * half + i0);
    rows::load_f32x8(sp, sinv + (size_t)t * half + i0);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const float p = __shfl_xor_sync(0xffffffffu, v[e], G / 2);
      // first half: a*c - b*s (own a, partner b); second half: b*c + a*s (own b, partner a)
      o[e] = first ? v[e] * cp[e] - p * sp[e] : v[e] * cp[e] + p * sp[e];
    }
    if (live) store8(out + off + 8 * gl, o);
  }
}

__global__ void act_quant_kernel(__nv_bfloat16* out, const __nv_bfloat16* x, int N, int C, Int8Rows codes) {
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  float m = 0;
  for (int c = lane; c < C; c += 32) m = fmaxf(m, fabsf(__bfloat162float(x[(size_t)row * C + c])));
  m = warp_max(m);
  const float s = 127.0f / fmaxf(m, 1e-5f);
  for (int c = lane; c < C; c += 32) {
    const float v = __bfloat162float(x[(size_t)row * C + c]);
    if (codes.codes) codes.codes[(size_t)row * C + c] = (int8_t)rows::int8_code(v, s);
    out[(size_t)row * C + c] = __float2bfloat16_rn(rows::quant_int8(v, s));
  }
  if (codes.factor && lane == 0) codes.factor[row] = rows::code_factor(m);
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

// dw[c] += sum over chunks of partial[chunk, c]: kFoldLanes row lanes per column each fold every
// kFoldLanes-th chunk (four loads in flight), then the lane sums are added in lane order (a fixed order:
// deterministic). With 8 lanes a thread walked 64 dependent chunks of a 512-block backward: 8.6 us a
// call, ~0.4 ms of a 125m step in ~46 calls, on 24 blocks (2 for QK-norm's head_dim rows).
constexpr int kFoldLanes = 32;
__global__ void __launch_bounds__(32 * kFoldLanes) rmsnorm_dw_final_kernel(float* dw, const float* partial, int chunks,
                                                                          int C) {
  __shared__ float sh[kFoldLanes][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  float s = 0;
  if (c < C) {
#pragma unroll 4
    for (int i = threadIdx.y; i < chunks; i += kFoldLanes) s += partial[(size_t)i * C + c];
  }
  sh[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float total = 0;
    for (int i = 0; i < kFoldLanes; ++i) total += sh[i][threadIdx.x];
    dw[c] += total;
  }
}

// The fused backward for rows of C = 8 * vectors (C <= 1024, rows 16-byte aligned): each row is held
// in registers by a group of G lanes (16-byte loads of 8 bf16), which computes dx and adds the row's
// dout * xhat to per-lane dw accumulators; a block's accumulators are summed in a fixed order into
// partial[block, C] (then folded by rmsnorm_dw_final_kernel), so the result is deterministic. VPL
// is the number of 8-wide vectors per lane.
// ROPE (QK-norm rows, one vector per lane, G = C / 8): dout is the gradient of the rotated output,
// turned back into the gradient of the normalised row by the inverse rotation in registers.
// OVERWRITE: dx = the row's gradient instead of dx += it.
// ROPE rows (hd <= 256, one vector per lane) run three blocks per SM: at two (88 registers) the kernel
// kept too few loads in flight to approach the memory bandwidth.
template <int VPL, bool ROPE = false, bool OVERWRITE = false>
__global__ void __launch_bounds__(kWarps * 32, ROPE ? 3 : VPL <= 3 ? 2 : 1) rmsnorm_backward_vec_kernel(
    __nv_bfloat16* dx, float* partial, const __nv_bfloat16* dout, const __nv_bfloat16* x, const float* w,
    const float* rstd, int N, int C, int G, int rows_per_block, const float* cosv = nullptr,
    const float* sinv = nullptr, int T = 1, int H = 1, int ld_dx = 0) {
  extern __shared__ float sdw[];  // [kWarps * (32 / G)][C]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, R = 32 / G, grp = lane / G, gl = lane % G;
  const int nvec = C / 8;
  const int r0 = blockIdx.x * rows_per_block, r1 = min(N, r0 + rows_per_block);
  // The weights are re-read (L1 hits) where they are used rather than held: 8 * VPL fewer registers
  // per thread, so two blocks fit on an SM up to C = 768 (VPL 3; VPL 4 would spill at two).
  float acc[VPL][8];
#pragma unroll
  for (int j = 0; j < VPL; ++j)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[j][e] = 0.0f;
  for (int base = r0 + warp * R; base < r1; base += kWarps * R) {  // warp-uniform: every lane shuffles
    const int row = base + grp;
    const bool live = row < r1;
    const int at = live ? row : r0;
    const size_t off = (size_t)at * C;
    // dx's row: the same offset, or for ROPE rows (token, head) at a token stride of ld_dx.
    const size_t dx_off = ROPE && ld_dx ? (size_t)(at / H) * ld_dx + (size_t)(at % H) * C : off;
    float dy[VPL][8], xh[VPL][8];
    const float r = live ? rstd[row] : 0.0f;
    float dot = 0.0f;
    // dx's old values (and, for RoPE, the row's cos / sin) are loaded with dout and x: one memory
    // round trip per row, not two or three.
    float rc[ROPE ? 8 : 1], rs[ROPE ? 8 : 1];
    if constexpr (ROPE) {
      const int half = C / 2, i0 = (gl < G / 2 ? gl : gl - G / 2) * 8, t = live ? (row / H) % T : 0;
      rows::load_f32x8(rc, cosv + (size_t)t * half + i0);
      rows::load_f32x8(rs, sinv + (size_t)t * half + i0);
    }
    uint4 old[VPL];
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
      const int v = gl + G * j;
      old[j] = !OVERWRITE && live && v < nvec ? *reinterpret_cast<const uint4*>(dx + dx_off + v * 8)
                                              : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
      const int v = gl + G * j;
      if (live && v < nvec) {
        const uint4 a = *reinterpret_cast<const uint4*>(dout + off + v * 8);
        const uint4 b = *reinterpret_cast<const uint4*>(x + off + v * 8);
        const __nv_bfloat16* pa = reinterpret_cast<const __nv_bfloat16*>(&a);
        const __nv_bfloat16* pb = reinterpret_cast<const __nv_bfloat16*>(&b);
        float wv[8];
        rows::load_f32x8(wv, w + v * 8);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          dy[j][e] = __bfloat162float(pa[e]);
          xh[j][e] = __bfloat162float(pb[e]) * r;
          dot += dy[j][e] * wv[e] * xh[j][e];
        }
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) dy[j][e] = xh[j][e] = 0.0f;
      }
    }
    if constexpr (ROPE) {  // inverse rotation: a' = a*c + b*s, b' = b*c - a*s
      const bool first = gl < G / 2;
      dot = 0.0f;
      float wv[8];
      rows::load_f32x8(wv, w + gl * 8);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float p = __shfl_xor_sync(0xffffffffu, dy[0][e], G / 2);
        const float c = rc[e], sn = rs[e];
        const float d = first ? dy[0][e] * c + p * sn : dy[0][e] * c - p * sn;
        dy[0][e] = d;
        dot += d * wv[e] * xh[0][e];
      }
    }
    for (int o = G / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    dot /= (float)C;
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
      const int v = gl + G * j;
      if (!live || v >= nvec) continue;
      __nv_bfloat16* po = reinterpret_cast<__nv_bfloat16*>(&old[j]);
      float wv[8];
      rows::load_f32x8(wv, w + v * 8);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float d = r * (dy[j][e] * wv[e] - xh[j][e] * dot);
        po[e] = OVERWRITE ? __float2bfloat16_rn(d) : __float2bfloat16_rn(__bfloat162float(po[e]) + d);
        acc[j][e] += dy[j][e] * xh[j][e];
      }
      *reinterpret_cast<uint4*>(dx + dx_off + v * 8) = old[j];
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

// Wide rows (1024 < C <= 4096, C % 8 == 0, 16-byte aligned) of the RMSNorm backward, and the MLP's sub-layer norm
// backward fused with the gated activation's backward (kGated, sub_norm_gated_backward). A block takes a run of rows,
// each row of C = 8 nvec values spread over the block's threads (vector v of the row at thread v % blockDim, VPT
// vectors per thread: wide_shape): one read of the row serves the row's dot = sum(dout * w * xhat) / C (a block sum)
// and dx = rstd (dout w - xhat dot). The register-resident kernel above stops at 1024 (its lane groups would need 64
// values of each row per lane); these rows used to take the scalar warp-per-row dx kernel and a separate dw pass that
// read dout and x again. Plain: dx += that, rounded to bf16 (the old dx read with the row). kGated: the norm's input h
// = act(gate) * up is recomputed exactly as the forward rounded it (gated_forward_vec_kernel's bf16), so h is never
// read; dx is rounded to bf16 as the unfused pass stores it and turned by the gated backward (gated_backward8's
// formulas) into dgate and dup at row stride ld. Each column's dw terms (dout * xhat) stay with one thread for the
// whole run and leave as partial[block, C] for rmsnorm_dw_final_kernel: deterministic, like every reduction here.
// Speed: the rows are held as their raw bf16 words (a quarter of the registers of f32 copies; the activation is
// recomputed after the block sum rather than kept) and the next row's loads are issued before this row's block sum, so
// a block always has a row in flight while it waits at the barrier. Keeping f32 copies of five arrays (128 registers:
// two vectors a thread at every width) left 512 threads per SM and the pass ran no faster than the two it replaced; now
// 80 registers, 768 threads per SM at the presets' widths.
constexpr int kWideMaxThreads = 384, kWideMaxC = 4096;
// The block of a row of C: one 16-byte vector a thread (a warp multiple) up to 384 of them (C 3072: the 125m
// and 0.3b MLPs' 2048 and 2816), two a thread above (at most 256 threads at C 4096): a second vector's
// registers only where the row has one for most threads.
struct WideShape {
  int vpt, threads;
};
inline WideShape wide_shape(int C) {
  const int nvec = C / 8, vpt = nvec <= kWideMaxThreads ? 1 : 2;
  return WideShape{vpt, ((nvec + vpt - 1) / vpt + 31) / 32 * 32};
}
// A row's three bf16 arrays as raw 16-byte words, VPT vectors each.
template <int VPT>
struct WideRow {
  uint4 a[VPT], b[VPT], c[VPT];
};
template <int VPT>
__device__ inline void load_wide_row(WideRow<VPT>& r, const __nv_bfloat16* a, const __nv_bfloat16* b,
                                     const __nv_bfloat16* c, int nvec) {
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int v = threadIdx.x + blockDim.x * j;
    if (v >= nvec) continue;
    r.a[j] = *reinterpret_cast<const uint4*>(a + 8 * v);
    r.b[j] = *reinterpret_cast<const uint4*>(b + 8 * v);
    r.c[j] = *reinterpret_cast<const uint4*>(c + 8 * v);
  }
}

template <bool kGated, int VPT>
__global__ void __launch_bounds__(kWideMaxThreads) rmsnorm_backward_wide_kernel(
    __nv_bfloat16* dx, __nv_bfloat16* dup, int ld, float* partial, const __nv_bfloat16* dout, const __nv_bfloat16* x,
    const float* w, const float* rstd, const __nv_bfloat16* gate, const __nv_bfloat16* up, int N, int C,
    int rows_per_block, GatedAct act) {
  __shared__ float red[32];
  const int nvec = C / 8, r0 = blockIdx.x * rows_per_block, r1 = min(N, r0 + rows_per_block);
  float acc[VPT][8];
#pragma unroll
  for (int j = 0; j < VPT; ++j)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[j][e] = 0.0f;
  // a: dout; b: x (plain) or gate (kGated); c: dx's old values (plain, at stride ld = C) or up (kGated).
  auto load = [&](WideRow<VPT>& r, int row) {
    const size_t off = (size_t)row * C;
    load_wide_row(r, dout + off, kGated ? gate + off : x + off, kGated ? up + off : dx + (size_t)row * ld, nvec);
  };
  WideRow<VPT> cur, next;
  if (r0 < r1) load(cur, r0);
  for (int row = r0; row < r1; ++row) {  // block-uniform: every thread reaches the block sum
    if (row + 1 < r1) load(next, row + 1);
    const float r = rstd[row];
    float xh[VPT][8];
    float dot = 0.0f;
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      const int v = threadIdx.x + blockDim.x * j;
      if (v >= nvec) continue;
      float dy[8], wv[8], h[8];
      unpack8(dy, cur.a[j]);
      unpack8(h, cur.b[j]);
      rows::load_f32x8(wv, w + 8 * v);
      if constexpr (kGated) {
        float u[8];
        unpack8(u, cur.c[j]);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          float f, df;
          gated_value(h[e], act, f, df);  // h held the gate
          h[e] = __bfloat162float(__float2bfloat16_rn(f * u[e]));
        }
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        xh[j][e] = h[e] * r;
        dot += dy[e] * wv[e] * xh[j][e];
      }
    }
    dot = block_sum(dot, red) / (float)C;
    const size_t out = (size_t)row * ld;
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      const int v = threadIdx.x + blockDim.x * j;
      if (v >= nvec) continue;
      float dy[8], wv[8], old[8], o0[8], o1[8];
      unpack8(dy, cur.a[j]);
      unpack8(old, cur.c[j]);
      rows::load_f32x8(wv, w + 8 * v);
      float g[8];
      if constexpr (kGated) unpack8(g, cur.b[j]);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float d = r * (dy[e] * wv[e] - xh[j][e] * dot);
        if constexpr (kGated) {
          float f, df;
          gated_value(g[e], act, f, df);
          const float dn = __bfloat162float(__float2bfloat16_rn(d));
          o0[e] = dn * old[e] * df;  // dgate (old: up)
          o1[e] = dn * f;            // dup
        } else {
          o0[e] = old[e] + d;
        }
        acc[j][e] += dy[e] * xh[j][e];
      }
      store8(dx + out + 8 * v, o0);
      if constexpr (kGated) store8(dup + out + 8 * v, o1);
    }
    cur = next;
  }
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int v = threadIdx.x + blockDim.x * j;
    if (v < nvec)
#pragma unroll
      for (int e = 0; e < 8; ++e) partial[(size_t)blockIdx.x * C + 8 * v + e] = acc[j][e];
  }
}

// The MLP's gated activation and its sub-layer norm's forward in one pass over rows of the wide kernel's
// shape (gated_sub_norm_forward): h = act(gate) * up rounded to bf16 as gated_act_forward stores it, then the
// norm and the int8 quantization exactly as rmsnorm_forward_vec_kernel computes them from h (y = h r w, the
// absmax of y, codes from the f32 y), with the row's sum of squares and absmax as block reductions. h itself is
// never stored: rmsnorm_backward_wide_kernel<true> recomputes it. Like the backward, the next row's gate and up
// are loaded before this row's reductions.
template <int VPT>
__global__ void __launch_bounds__(kWideMaxThreads) gated_sub_norm_forward_kernel(
    __nv_bfloat16* out, __nv_bfloat16* out_q, float* rstd, const __nv_bfloat16* gate, const __nv_bfloat16* up,
    const float* w, int N, int C, int rows_per_block, float eps, GatedAct act, Int8Rows codes) {
  __shared__ float red[32];
  const int nvec = C / 8, r0 = blockIdx.x * rows_per_block, r1 = min(N, r0 + rows_per_block);
  uint4 cg[VPT], cu[VPT], ng[VPT], nu[VPT];
  auto load = [&](uint4 (&g)[VPT], uint4 (&u)[VPT], int row) {
    const size_t off = (size_t)row * C;
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      const int vi = threadIdx.x + blockDim.x * j;
      if (vi >= nvec) continue;
      g[j] = *reinterpret_cast<const uint4*>(gate + off + 8 * vi);
      u[j] = *reinterpret_cast<const uint4*>(up + off + 8 * vi);
    }
  };
  if (r0 < r1) load(cg, cu, r0);
  for (int row = r0; row < r1; ++row) {  // block-uniform: every thread reaches the block reductions
    if (row + 1 < r1) load(ng, nu, row + 1);
    const size_t off = (size_t)row * C;
    float v[VPT][8];
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      const int vi = threadIdx.x + blockDim.x * j;
      if (vi < nvec) {
        float g[8], u[8];
        unpack8(g, cg[j]);
        unpack8(u, cu[j]);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          float f, df;
          gated_value(g[e], act, f, df);
          v[j][e] = __bfloat162float(__float2bfloat16_rn(f * u[e]));
        }
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[j][e] = 0.0f;
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) ss += v[j][e] * v[j][e];
    }
    ss = block_sum(ss, red);
    const float r = 1.0f / sqrtf(ss / (float)C + eps);
    if (threadIdx.x == 0) rstd[row] = r;
    float m = 0.0f;
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      const int vi = threadIdx.x + blockDim.x * j;
      if (vi >= nvec) continue;
      m = fmaxf(m, rows::scale8_absmax(v[j], r, w + 8 * vi));
      if (out) store8(out + off + 8 * vi, v[j]);
    }
#pragma unroll
    for (int j = 0; j < VPT; ++j) cg[j] = ng[j], cu[j] = nu[j];
    if (!out_q) continue;
    m = block_max(m, red);
    const float s = 127.0f / fmaxf(m, 1e-5f);
    if (threadIdx.x == 0 && codes.factor) codes.factor[row] = rows::code_factor(m);
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      const int vi = threadIdx.x + blockDim.x * j;
      if (vi >= nvec) continue;
      rows::store_quantized8(out_q + off + 8 * vi, codes.codes ? codes.codes + off + 8 * vi : nullptr, v[j], s);
    }
  }
}

unsigned row_blocks(int N) { return (unsigned)((N + kWarps - 1) / kWarps); }

}  // namespace

namespace {

// Calls f(std::integral_constant<int, VPL>) with the smallest instantiated vectors-per-lane count that
// holds a row of nvec vectors; false where the row is too wide for registers (C > 4096).
template <typename F>
bool with_vpl(int nvec, F&& f) {
  const int need = rows::vectors_per_lane(nvec);
  if (need <= 1) return f(std::integral_constant<int, 1>{}), true;
  if (need <= 2) return f(std::integral_constant<int, 2>{}), true;
  if (need <= 3) return f(std::integral_constant<int, 3>{}), true;
  if (need <= 4) return f(std::integral_constant<int, 4>{}), true;
  if (need <= 6) return f(std::integral_constant<int, 6>{}), true;
  if (need <= 8) return f(std::integral_constant<int, 8>{}), true;
  if (need <= 12) return f(std::integral_constant<int, 12>{}), true;
  if (need <= 16) return f(std::integral_constant<int, 16>{}), true;
  return false;
}

bool vec_rows_ok(int C, std::initializer_list<const void*> ptrs) {
  if (C % 8 != 0 || C > 4096) return false;
  for (const void* p : ptrs)
    if (p && !aligned16(p)) return false;
  return true;
}

}  // namespace

void rmsnorm_forward(Context& ctx, bf16* out, bf16* out_q, float* rstd, const bf16* x, const float* w, int N, int C,
                     float eps, Int8Rows codes) {
  OB_CHECK(out_q || !(codes.codes || codes.factor), "rmsnorm_forward: int8 codes without out_q");
  OB_CHECK(N > 0 && C > 0, "rmsnorm_forward: empty shape");
  cudaStream_t st = stream_of(ctx);
  if (vec_rows_ok(C, {out, out_q, x}) &&
      with_vpl(C / 8, [&](auto vpl) {
        // out == out_q (the network's shared buffer: only the quantized value is read): one store.
        rmsnorm_forward_vec_kernel<decltype(vpl)::value><<<rows::blocks_for_rows(N, C / 8), rows::kWarps * 32, 0, st>>>(
            out == out_q ? nullptr : dev(out), out_q ? dev(out_q) : nullptr, rstd, dev(x), w, N, C, eps, codes);
      })) {
    check_last_launch("rmsnorm_forward");
    return;
  }
  rmsnorm_forward_kernel<<<row_blocks(N), kWarps * 32, 0, st>>>(dev(out), out_q ? dev(out_q) : nullptr, rstd, dev(x), w,
                                                                 N, C, eps, codes);
  check_last_launch("rmsnorm_forward");
}

void act_quant_int8(Context& ctx, bf16* out, const bf16* x, int N, int C, Int8Rows codes) {
  OB_CHECK(N > 0 && C > 0, "act_quant_int8: empty shape");
  cudaStream_t st = stream_of(ctx);
  if (vec_rows_ok(C, {out, x}) && with_vpl(C / 8, [&](auto vpl) {
        act_quant_vec_kernel<decltype(vpl)::value>
            <<<rows::blocks_for_rows(N, C / 8), rows::kWarps * 32, 0, st>>>(dev(out), dev(x), N, C, codes);
      })) {
    check_last_launch("act_quant_int8");
    return;
  }
  act_quant_kernel<<<row_blocks(N), kWarps * 32, 0, st>>>(dev(out), dev(x), N, C, codes);
  check_last_launch("act_quant_int8");
}

bool qk_norm_rope_fusable(int hd) { return hd >= 16 && hd <= 256 && (hd & (hd - 1)) == 0; }

void qk_norm_rope_forward(Context& ctx, bf16* out, float* rstd, const bf16* x, const float* w, const float* cos,
                          const float* sin, int B, int T, int H, int hd, float eps) {
  OB_CHECK(qk_norm_rope_fusable(hd) && aligned16(out) && aligned16(x),
           "qk_norm_rope_forward: head_dim ", hd, " is not a power of two in [16, 256] or rows are unaligned");
  const int N = B * T * H;
  if (N == 0) return;
  qk_norm_rope_forward_kernel<<<rows::blocks_for_rows(N, hd / 8), rows::kWarps * 32, 0, stream_of(ctx)>>>(
      dev(out), rstd, dev(x), w, cos, sin, N, T, H, hd, eps);
  check_last_launch("qk_norm_rope_forward");
}

namespace {

template <int VPL, bool ROPE = false, bool OVERWRITE = false>
void launch_backward_vec(Context& ctx, bf16* dx, float* dw, const bf16* dout, const bf16* x, const float* w,
                         const float* rstd, int N, int C, const float* cos = nullptr, const float* sin = nullptr,
                         int T = 1, int H = 1, int ld_dx = 0) {
  const int nvec = C / 8;
  int G = 1;
  while (G < nvec && G < 32) G <<= 1;
  const int R = 32 / G;
  // About four blocks per SM, each a contiguous run of rows; ROPE rows: the three that are resident at
  // once (one wave, no tail).
  const int rows_per_unit = kWarps * R;
  const int blocks = std::max(1, std::min((N + rows_per_unit - 1) / rows_per_unit, 132 * (ROPE ? 3 : 4)));
  const int rows_per_block = (N + blocks - 1) / blocks;
  const int used = (N + rows_per_block - 1) / rows_per_block;
  const size_t smem = sizeof(float) * (size_t)kWarps * R * C;
  auto* partial = static_cast<float*>(ctx.scratch(sizeof(float) * (size_t)used * C));
  cudaStream_t st = stream_of(ctx);
  auto* kernel = rmsnorm_backward_vec_kernel<VPL, ROPE, OVERWRITE>;
  if (smem > 48 * 1024) allow_smem(kernel, smem);
  kernel<<<used, kWarps * 32, smem, st>>>(dev(dx), partial, dev(dout), dev(x), w, rstd, N, C, G, rows_per_block, cos,
                                          sin, T, H, ld_dx);
  rmsnorm_dw_final_kernel<<<(C + 31) / 32, dim3(32, kFoldLanes), 0, st>>>(dw, partial, used, C);
  check_last_launch("rmsnorm_backward");
}

// The wide kernels' grid: N rows in contiguous runs, at most 1056 blocks (8 per H200 SM; 2-3 are resident, so about
// three waves): 16 rows a block at the 125m shape, long enough runs for the next-row prefetch. A fixed count, not the
// device's SM count, as launch_backward_vec's: the backward's dw partials are grouped by these runs, so their sum's
// bits are the same on every GPU.
struct RowRuns {
  int blocks, rows_per_block;
};
RowRuns wide_row_runs(int N) {
  const int cap = std::max(1, std::min(N, 132 * 8));
  const int rows_per_block = (N + cap - 1) / cap;
  return RowRuns{(N + rows_per_block - 1) / rows_per_block, rows_per_block};
}

// rmsnorm_backward_wide_kernel over wide_row_runs(N). Plain: dx at ld = C, dup, gate, up unused.
template <bool kGated>
void launch_backward_wide(Context& ctx, bf16* dx, bf16* dup, int ld, float* dw, const bf16* dout, const bf16* x,
                          const float* w, const float* rstd, const bf16* gate, const bf16* up, int N, int C,
                          GatedAct act) {
  const auto [used, rows_per_block] = wide_row_runs(N);
  auto* partial = static_cast<float*>(ctx.scratch(sizeof(float) * (size_t)used * C));
  cudaStream_t st = stream_of(ctx);
  const WideShape shape = wide_shape(C);
  auto kernel = shape.vpt == 1 ? rmsnorm_backward_wide_kernel<kGated, 1> : rmsnorm_backward_wide_kernel<kGated, 2>;
  kernel<<<used, shape.threads, 0, st>>>(dev(dx), kGated ? dev(dup) : nullptr, ld, partial, dev(dout),
                                        kGated ? nullptr : dev(x), w, rstd, kGated ? dev(gate) : nullptr,
                                        kGated ? dev(up) : nullptr, N, C, rows_per_block, act);
  rmsnorm_dw_final_kernel<<<(C + 31) / 32, dim3(32, kFoldLanes), 0, st>>>(dw, partial, used, C);
  check_last_launch(kGated ? "sub_norm_gated_backward" : "rmsnorm_backward");
}

}  // namespace

void rmsnorm_backward(Context& ctx, bf16* dx, float* dw, const bf16* dout, const bf16* x, const float* w,
                      const float* rstd, int N, int C, bool rows_by_block) {
  OB_CHECK(N > 0 && C > 0, "rmsnorm_backward: empty shape");
  const bool aligned = ((uintptr_t)dx | (uintptr_t)dout | (uintptr_t)x) % 16 == 0;
  if (aligned && C % 8 == 0 && C <= 1024 && !rows_by_block) {
    const int vpl = (C / 8 + 31) / 32;  // vectors per lane once a row spans all 32 lanes
    if (vpl <= 1) return launch_backward_vec<1>(ctx, dx, dw, dout, x, w, rstd, N, C);
    if (vpl == 2) return launch_backward_vec<2>(ctx, dx, dw, dout, x, w, rstd, N, C);
    if (vpl == 3) return launch_backward_vec<3>(ctx, dx, dw, dout, x, w, rstd, N, C);
    return launch_backward_vec<4>(ctx, dx, dw, dout, x, w, rstd, N, C);
  }
  if (aligned && C % 8 == 0 && C <= kWideMaxC)
    return launch_backward_wide<false>(ctx, dx, nullptr, C, dw, dout, x, w, rstd, nullptr, nullptr, N, C,
                                       GatedAct::SwiGLU);
  // Any other width (or unaligned rows): a warp per row for dx, then the column reduction in fixed row chunks.
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
  rmsnorm_dw_final_kernel<<<col_blocks, dim3(32, kFoldLanes), 0, st>>>(dw, partial, used, C);
  check_last_launch("rmsnorm_backward");
}

bool sub_norm_fusable(int N, int C, std::initializer_list<const void*> rows) {
  static_assert(kWideMaxC == 4096, "vec_rows_ok's width limit is the wide kernels'");
  return N > 0 && vec_rows_ok(C, rows);
}

void gated_sub_norm_forward(Context& ctx, bf16* out, bf16* out_q, float* rstd, const bf16* gate, const bf16* up,
                            const float* w, int N, int C, float eps, GatedAct act, Int8Rows codes) {
  OB_CHECK(sub_norm_fusable(N, C, {out, out_q, gate, up}), "gated_sub_norm_forward: rows of ", C,
           " are not a multiple of 8 up to ", kWideMaxC, " or not 16-byte aligned");
  OB_CHECK(out_q || !(codes.codes || codes.factor), "gated_sub_norm_forward: int8 codes without out_q");
  const auto [used, rows_per_block] = wide_row_runs(N);
  // out == out_q (the network's shared buffer: only the quantized value is read): one store.
  const WideShape shape = wide_shape(C);
  auto kernel = shape.vpt == 1 ? gated_sub_norm_forward_kernel<1> : gated_sub_norm_forward_kernel<2>;
  kernel<<<used, shape.threads, 0, stream_of(ctx)>>>(
      out == out_q ? nullptr : dev(out), out_q ? dev(out_q) : nullptr, rstd, dev(gate), dev(up), w, N, C,
      rows_per_block, eps, act, codes);
  check_last_launch("gated_sub_norm_forward");
}

bool sub_norm_gated_backward(Context& ctx, bf16* dgate, bf16* dup, int ld, float* dw, const bf16* dout, const float* w,
                             const float* rstd, const bf16* gate, const bf16* up, int N, int C, GatedAct act) {
  if (!sub_norm_fusable(N, C, {dgate, dup, dout, gate, up}) || ld % 8 != 0 || ld < C) return false;
  launch_backward_wide<true>(ctx, dgate, dup, ld, dw, dout, nullptr, w, rstd, gate, up, N, C, act);
  return true;
}

void qk_norm_rope_backward(Context& ctx, bf16* dx, float* dw, const bf16* dout, const bf16* x, const float* w,
                           const float* rstd, const float* cos, const float* sin, int B, int T, int H, int hd,
                           int ld_dx) {
  OB_CHECK(qk_norm_rope_fusable(hd) && aligned16(dx) && aligned16(dout) && aligned16(x),
           "qk_norm_rope_backward: head_dim ", hd, " is not a power of two in [16, 256] or rows are unaligned");
  OB_CHECK(ld_dx == 0 || (ld_dx >= H * hd && ld_dx % 8 == 0), "qk_norm_rope_backward: dx row stride ", ld_dx,
           " is below ", H * hd, " or not a multiple of 8");
  const int N = B * T * H;
  if (N == 0) return;
  if (hd <= 256) launch_backward_vec<1, true, true>(ctx, dx, dw, dout, x, w, rstd, N, hd, cos, sin, T, H, ld_dx);
}

}  // namespace onebit::kernels::cuda
