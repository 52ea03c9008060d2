// Elementwise kernels: RoPE, gated MLP activations, the residual branch with dropout. f32 math on
// bf16 storage, the formulas of reference.h.
#include <initializer_list>

#include "onebit/kernels/cuda/common.cuh"
#include "onebit/kernels/cuda/gated.cuh"
#include "onebit/kernels/cuda/row_groups.cuh"

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

__global__ void gated_forward_kernel(__nv_bfloat16* out, const __nv_bfloat16* gate, const __nv_bfloat16* up,
                                     size_t lo, size_t n, GatedAct act) {
  for (size_t i = lo + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float f, df;
    gated_value(__bfloat162float(gate[i]), act, f, df);
    out[i] = __float2bfloat16_rn(f * __bfloat162float(up[i]));
  }
}

// The same formulas eight elements at a time (16-byte accesses): these passes are bound by memory
// bandwidth, which scalar 2-byte accesses leave two thirds unused.
__global__ void gated_forward_vec_kernel(__nv_bfloat16* out, const __nv_bfloat16* gate, const __nv_bfloat16* up,
                                         size_t nvec, GatedAct act) {
  for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < nvec; v += (size_t)gridDim.x * blockDim.x) {
    float g[8], u[8], o[8];
    load8(g, gate + 8 * v);
    load8(u, up + 8 * v);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      float f, df;
      gated_value(g[e], act, f, df);
      o[e] = f * u[e];
    }
    store8(out + 8 * v, o);
  }
}

__global__ void gated_backward_kernel(__nv_bfloat16* dgate, __nv_bfloat16* dup, const __nv_bfloat16* dout,
                                      const __nv_bfloat16* gate, const __nv_bfloat16* up, size_t lo, size_t n,
                                      GatedAct act) {
  for (size_t i = lo + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float f, df;
    gated_value(__bfloat162float(gate[i]), act, f, df);
    const float d = __bfloat162float(dout[i]);
    dgate[i] = __float2bfloat16_rn(d * __bfloat162float(up[i]) * df);
    dup[i] = __float2bfloat16_rn(d * f);
  }
}

// Eight elements of the gated backward: inputs at `in`, outputs at `out` (16-byte aligned).
__device__ inline void gated_backward8(__nv_bfloat16* dgate, __nv_bfloat16* dup, size_t out,
                                       const __nv_bfloat16* dout, const __nv_bfloat16* gate,
                                       const __nv_bfloat16* up, size_t in, GatedAct act) {
  float g[8], u[8], d[8], dg[8], du[8];
  load8(g, gate + in);
  load8(u, up + in);
  load8(d, dout + in);
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    float f, df;
    gated_value(g[e], act, f, df);
    dg[e] = d[e] * u[e] * df;
    du[e] = d[e] * f;
  }
  store8(dgate + out, dg);
  store8(dup + out, du);
}

__global__ void gated_backward_vec_kernel(__nv_bfloat16* dgate, __nv_bfloat16* dup, const __nv_bfloat16* dout,
                                          const __nv_bfloat16* gate, const __nv_bfloat16* up, size_t nvec,
                                          GatedAct act) {
  for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < nvec; v += (size_t)gridDim.x * blockDim.x)
    gated_backward8(dgate, dup, 8 * v, dout, gate, up, 8 * v, act);
}

// gated_backward_kernel / _vec_kernel over [N, C] rows with dgate's and dup's rows ld apart (the fused
// gate/up gradient's column blocks). VEC: 8 elements per thread (C % 8 == 0, ld % 8 == 0, aligned).
template <bool VEC>
__global__ void gated_backward_rows_kernel(__nv_bfloat16* dgate, __nv_bfloat16* dup, int ld,
                                           const __nv_bfloat16* dout, const __nv_bfloat16* gate,
                                           const __nv_bfloat16* up, int N, int C, GatedAct act) {
  const unsigned per_row = VEC ? (unsigned)C / 8 : (unsigned)C, total = (unsigned)N * per_row;
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const unsigned row = i / per_row, col = (i - row * per_row) * (VEC ? 8 : 1);
    const size_t in = (size_t)row * C + col, out = (size_t)row * ld + col;
    if constexpr (VEC) {
      gated_backward8(dgate, dup, out, dout, gate, up, in, act);
    } else {
      float f, df;
      gated_value(__bfloat162float(gate[in]), act, f, df);
      const float d = __bfloat162float(dout[in]);
      dgate[out] = __float2bfloat16_rn(d * __bfloat162float(up[in]) * df);
      dup[out] = __float2bfloat16_rn(d * f);
    }
  }
}

// Products and sum rounded separately (no fused multiply-add): the value of the plain C++
// expression, whatever the CUDA compiler would contract.
__device__ inline float residual_value(float x, float y, float scale, float p, uint64_t seed, size_t i) {
  const float m = p > 0.0f ? dropout_factor_dev(seed, i, p) : 1.0f;
  return __fadd_rn(x, __fmul_rn(__fmul_rn(scale, m), y));
}
__device__ inline float residual_grad(float dout, float scale, float p, uint64_t seed, size_t i) {
  const float m = p > 0.0f ? dropout_factor_dev(seed, i, p) : 1.0f;
  return __fmul_rn(__fmul_rn(scale, m), dout);
}

__global__ void residual_forward_kernel(__nv_bfloat16* out, const __nv_bfloat16* x, const __nv_bfloat16* y,
                                        float scale, float p, uint64_t seed, size_t lo, size_t n) {
  for (size_t i = lo + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = __float2bfloat16_rn(residual_value(__bfloat162float(x[i]), __bfloat162float(y[i]), scale, p, seed, i));
}

__global__ void residual_forward_vec_kernel(__nv_bfloat16* out, const __nv_bfloat16* x, const __nv_bfloat16* y,
                                            float scale, float p, uint64_t seed, size_t nvec) {
  for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < nvec; v += (size_t)gridDim.x * blockDim.x) {
    float a[8], b[8];
    load8(a, x + 8 * v);
    load8(b, y + 8 * v);
#pragma unroll
    for (int e = 0; e < 8; ++e) a[e] = residual_value(a[e], b[e], scale, p, seed, 8 * v + e);
    store8(out + 8 * v, a);
  }
}

__global__ void residual_backward_kernel(__nv_bfloat16* dy, const __nv_bfloat16* dout, float scale, float p,
                                         uint64_t seed, size_t lo, size_t n) {
  for (size_t i = lo + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dy[i] = __float2bfloat16_rn(residual_grad(__bfloat162float(dout[i]), scale, p, seed, i));
}

__global__ void residual_backward_vec_kernel(__nv_bfloat16* dy, const __nv_bfloat16* dout, float scale, float p,
                                             uint64_t seed, size_t nvec) {
  for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < nvec; v += (size_t)gridDim.x * blockDim.x) {
    float a[8];
    load8(a, dout + 8 * v);
#pragma unroll
    for (int e = 0; e < 8; ++e) a[e] = residual_grad(a[e], scale, p, seed, 8 * v + e);
    store8(dy + 8 * v, a);
  }
}

// act(gate) * up for one row at a time per block, each thread holding up to two 8-wide vectors of it
// in registers, then the row's absmax int8 quantization from the f32 values: the activation never
// makes a bf16 round trip through memory before the quantization the down projection reads. (A row
// per block, not per lane group: the MLP rows are 2048+ wide, and a group holding one in registers
// left too few warps resident to keep memory busy.) Blocks loop over rows gridDim.x apart and load
// the next row's gate and up while the current row's absmax is reduced, so the block's barriers do
// not leave the memory system idle.
// The pass is bound by instruction issue, not memory (a warp per row holding the row packed and
// computing the activation twice took twice as long, session 13): the codes' values q / s, one
// correctly rounded division per element, come from a per-row table of the 256 possible quotients that
// the block fills once (the same divisions, so the same bits).
template <int VPT>
__global__ void __launch_bounds__(1024) gated_quant_row_kernel(__nv_bfloat16* out, __nv_bfloat16* out_q,
                                                               const __nv_bfloat16* gate, const __nv_bfloat16* up,
                                                               int N, int C, GatedAct act, Int8Rows codes) {
  __shared__ float sh[32];
  __shared__ float quot[256];  // quot[q + 128] = q / s for this row's s
  const int nvec = C / 8;
  uint4 gn[VPT], un[VPT];  // the next row's raw vectors
  auto fetch = [&](int row) {
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      const int vi = threadIdx.x + j * blockDim.x;
      if (vi < nvec) {
        gn[j] = *reinterpret_cast<const uint4*>(gate + (size_t)row * C + 8 * vi);
        un[j] = *reinterpret_cast<const uint4*>(up + (size_t)row * C + 8 * vi);
      }
    }
  };
  if ((int)blockIdx.x < N) fetch(blockIdx.x);
  for (int row = blockIdx.x; row < N; row += gridDim.x) {
    uint4 gc[VPT], uc[VPT];
#pragma unroll
    for (int j = 0; j < VPT; ++j) gc[j] = gn[j], uc[j] = un[j];
    if (row + (int)gridDim.x < N) fetch(row + gridDim.x);
    const size_t off = (size_t)row * C;
    float v[VPT][8];
    float m = 0.0f;
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      const int vi = threadIdx.x + j * blockDim.x;
      if (vi < nvec) {
        const __nv_bfloat16* g = reinterpret_cast<const __nv_bfloat16*>(&gc[j]);
        const __nv_bfloat16* u = reinterpret_cast<const __nv_bfloat16*>(&uc[j]);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          float f, df;
          gated_value(__bfloat162float(g[e]), act, f, df);
          v[j][e] = f * __bfloat162float(u[e]);
          m = fmaxf(m, fabsf(v[j][e]));
        }
        if (out) store8(out + off + 8 * vi, v[j]);
      }
    }
    m = block_max(m, sh);  // its barriers also order the previous row's table reads before the refill
    const float s = 127.0f / fmaxf(m, 1e-5f);
    for (int t = threadIdx.x; t < 256; t += blockDim.x) quot[t] = (float)(t - 128) / s;
    if (codes.factor && threadIdx.x == 0) codes.factor[row] = rows::code_factor(m);
    __syncthreads();
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      const int vi = threadIdx.x + j * blockDim.x;
      if (vi >= nvec) continue;
      if (codes.codes) rows::store_codes8(codes.codes + off + 8 * vi, v[j], s);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[j][e] = rows::quant_int8_table(quot, v[j][e], s);
      store8(out_q + off + 8 * vi, v[j]);
    }
  }
}

// RoPE with 8 pairs per thread: thread (row, chunk) rotates elements [8c, 8c + 8) with
// [half + 8c, half + 8c + 8) of one head vector (half a multiple of 8). Rows are (b, t, h).
__global__ void rope_vec_kernel(__nv_bfloat16* x, const float* cosv, const float* sinv, int T, int H, int half,
                                size_t rows, bool inverse) {
  const int chunks = half / 8;
  for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < rows * chunks;
       idx += (size_t)gridDim.x * blockDim.x) {
    const size_t row = idx / chunks;
    const int i0 = (int)(idx - row * chunks) * 8;
    const int t = (int)((row / H) % T);
    __nv_bfloat16* v = x + row * (size_t)(2 * half);
    float a[8], b[8], ra[8], rb[8];
    load8(a, v + i0);
    load8(b, v + half + i0);
    const float* cp = cosv + (size_t)t * half + i0;
    const float* sp = sinv + (size_t)t * half + i0;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const float c = cp[e], s = inverse ? -sp[e] : sp[e];
      ra[e] = a[e] * c - b[e] * s;
      rb[e] = b[e] * c + a[e] * s;
    }
    store8(v + i0, ra);
    store8(v + half + i0, rb);
  }
}

}  // namespace

void rope(Context& ctx, bf16* x, const float* cos, const float* sin, int B, int T, int H, int hd, bool inverse) {
  OB_CHECK(hd % 2 == 0, "rope: head_dim ", hd, " is odd");
  const size_t pairs = (size_t)B * T * H * (hd / 2);
  if (pairs == 0) return;
  if ((hd / 2) % 8 == 0 && aligned16(x)) {
    const size_t rows = (size_t)B * T * H, work = rows * (size_t)(hd / 16);
    rope_vec_kernel<<<blocks_for(work, kThreads), kThreads, 0, stream_of(ctx)>>>(dev(x), cos, sin, T, H, hd / 2, rows,
                                                                                inverse);
  } else {
    rope_kernel<<<blocks_for(pairs, kThreads), kThreads, 0, stream_of(ctx)>>>(dev(x), cos, sin, T, H, hd, pairs,
                                                                             inverse);
  }
  check_last_launch("rope");
}

namespace {
// The vectorised kernels cover the first n / 8 * 8 elements when every pointer is 16-byte aligned;
// the scalar kernels take the rest (or everything).
size_t vec_part(size_t n, std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (!aligned16(p)) return 0;
  return n / 8;
}
}  // namespace

void gated_act_forward(Context& ctx, bf16* out, const bf16* gate, const bf16* up, size_t n, GatedAct act) {
  if (n == 0) return;
  cudaStream_t st = stream_of(ctx);
  const size_t nv = vec_part(n, {out, gate, up});
  if (nv) gated_forward_vec_kernel<<<blocks_for(nv, kThreads), kThreads, 0, st>>>(dev(out), dev(gate), dev(up), nv, act);
  if (8 * nv < n)
    gated_forward_kernel<<<blocks_for(n - 8 * nv, kThreads), kThreads, 0, st>>>(dev(out), dev(gate), dev(up), 8 * nv,
                                                                               n, act);
  check_last_launch("gated_act_forward");
}

void gated_act_backward(Context& ctx, bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up,
                        size_t n, GatedAct act) {
  if (n == 0) return;
  cudaStream_t st = stream_of(ctx);
  const size_t nv = vec_part(n, {dgate, dup, dout, gate, up});
  if (nv)
    gated_backward_vec_kernel<<<blocks_for(nv, kThreads), kThreads, 0, st>>>(dev(dgate), dev(dup), dev(dout), dev(gate),
                                                                            dev(up), nv, act);
  if (8 * nv < n)
    gated_backward_kernel<<<blocks_for(n - 8 * nv, kThreads), kThreads, 0, st>>>(dev(dgate), dev(dup), dev(dout),
                                                                                dev(gate), dev(up), 8 * nv, n, act);
  check_last_launch("gated_act_backward");
}

void gated_act_backward_rows(Context& ctx, bf16* dgate, bf16* dup, int ld, const bf16* dout, const bf16* gate,
                             const bf16* up, int N, int C, GatedAct act) {
  OB_CHECK(N >= 0 && C >= 0 && ld >= C && (uint64_t)N * C < (1ull << 32), "gated_act_backward_rows: bad shape N=", N,
           " C=", C, " ld=", ld);
  if (N == 0 || C == 0) return;
  cudaStream_t st = stream_of(ctx);
  const bool vec = C % 8 == 0 && ld % 8 == 0 && aligned16(dgate) && aligned16(dup) && aligned16(dout) &&
                   aligned16(gate) && aligned16(up);
  const size_t work = vec ? (size_t)N * C / 8 : (size_t)N * C;
  if (vec)
    gated_backward_rows_kernel<true><<<blocks_for(work, kThreads), kThreads, 0, st>>>(dev(dgate), dev(dup), ld,
                                                                                     dev(dout), dev(gate), dev(up), N,
                                                                                     C, act);
  else
    gated_backward_rows_kernel<false><<<blocks_for(work, kThreads), kThreads, 0, st>>>(dev(dgate), dev(dup), ld,
                                                                                      dev(dout), dev(gate), dev(up),
                                                                                      N, C, act);
  check_last_launch("gated_act_backward_rows");
}

bool gated_act_quant_forward(Context& ctx, bf16* out, bf16* out_q, const bf16* gate, const bf16* up, int N, int C,
                             GatedAct act, Int8Rows codes) {
  if (N <= 0 || C % 8 != 0 || C > 16384 || !aligned16(out_q) || !aligned16(gate) || !aligned16(up) ||
      (out && !aligned16(out)))
    return false;
  bf16* plain = out == out_q ? nullptr : out;  // shared storage: only the quantized value is kept
  const int nvec = C / 8;
  const int vpt = nvec > 1024 ? 2 : 1;  // C <= 16384: at most 2048 vectors, two per thread of 1024
  const int threads = std::min(1024, ((nvec + vpt - 1) / vpt + 31) / 32 * 32);
  cudaStream_t st = stream_of(ctx);
  // Enough blocks to fill every SM (2048 threads each) twice over; each loops over its rows.
  const int blocks = std::min(N, 132 * 2 * std::max(1, 2048 / threads));
  if (vpt == 1)
    gated_quant_row_kernel<1><<<blocks, threads, 0, st>>>(plain ? dev(plain) : nullptr, dev(out_q), dev(gate), dev(up),
                                                          N, C, act, codes);
  else
    gated_quant_row_kernel<2><<<blocks, threads, 0, st>>>(plain ? dev(plain) : nullptr, dev(out_q), dev(gate), dev(up),
                                                          N, C, act, codes);
  check_last_launch("gated_act_quant_forward");
  return true;
}

void residual_forward(Context& ctx, bf16* out, const bf16* x, const bf16* y, float scale, float p, uint64_t seed,
                      size_t n) {
  if (n == 0) return;
  cudaStream_t st = stream_of(ctx);
  const size_t nv = vec_part(n, {out, x, y});
  if (nv)
    residual_forward_vec_kernel<<<blocks_for(nv, kThreads), kThreads, 0, st>>>(dev(out), dev(x), dev(y), scale, p, seed,
                                                                              nv);
  if (8 * nv < n)
    residual_forward_kernel<<<blocks_for(n - 8 * nv, kThreads), kThreads, 0, st>>>(dev(out), dev(x), dev(y), scale, p,
                                                                                  seed, 8 * nv, n);
  check_last_launch("residual_forward");
}

void residual_backward(Context& ctx, bf16* dy, const bf16* dout, float scale, float p, uint64_t seed, size_t n) {
  if (n == 0) return;
  cudaStream_t st = stream_of(ctx);
  const size_t nv = vec_part(n, {dy, dout});
  if (nv)
    residual_backward_vec_kernel<<<blocks_for(nv, kThreads), kThreads, 0, st>>>(dev(dy), dev(dout), scale, p, seed, nv);
  if (8 * nv < n)
    residual_backward_kernel<<<blocks_for(n - 8 * nv, kThreads), kThreads, 0, st>>>(dev(dy), dev(dout), scale, p, seed,
                                                                                   8 * nv, n);
  check_last_launch("residual_backward");
}

}  // namespace onebit::kernels::cuda
