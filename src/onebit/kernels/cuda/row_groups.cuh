#pragma once
// Rows held in registers by lane groups: a row of C = 8 * nvec bf16 values is read by a group of G
// lanes (G the smallest power of two >= nvec, at most 32), 16 bytes at a time; lane gl of the group
// holds the row's vectors gl, gl + G, gl + 2G, ... (VPL of them), so a warp reads contiguous memory
// and one pass over the row serves a reduction (sum of squares, absmax) and the output. 32 / G rows
// share a warp. Loops over rows are warp-uniform so every lane reaches every shuffle.
#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda::rows {

constexpr int kWarps = 8;  // warps per block

__host__ __device__ inline int group_lanes(int nvec) {
  int G = 1;
  while (G < nvec && G < 32) G <<= 1;
  return G;
}
__host__ __device__ inline int vectors_per_lane(int nvec) { return (nvec + group_lanes(nvec) - 1) / group_lanes(nvec); }

__device__ inline float group_sum(float v, int G) {
  for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline float group_max(float v, int G) {
  for (int o = G / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// p[0..8) of f32 values (parameters: norm weights, RoPE tables) as two 16-byte loads where p is 16-byte
// aligned (the arenas place every tensor on a 64-byte boundary), else eight. A lane group reads a row's
// weights with lanes 32 bytes apart: as scalars every load instruction touched 32 sectors for 4 bytes
// a lane, so the L1 spent more cycles on the weights than on the rows (the rows' kernels ran at 35-40%
// of the memory bandwidth on the H200); as 16-byte loads it spends a quarter of that. Same values.
__device__ inline void load_f32x8(float (&o)[8], const float* p) {
  if ((reinterpret_cast<uintptr_t>(p) & 15) == 0) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p)), b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    o[0] = a.x, o[1] = a.y, o[2] = a.z, o[3] = a.w, o[4] = b.x, o[5] = b.y, o[6] = b.z, o[7] = b.w;
  } else {
#pragma unroll
    for (int e = 0; e < 8; ++e) o[e] = __ldg(p + e);
  }
}

// The rounding of per-token absmax int8 quantization (reference.h), as a bf16-representable value.
__device__ inline float quant_int8(float y, float s) { return fminf(fmaxf(rintf(y * s), -128.0f), 127.0f) / s; }

// The same value with the quotient q / s read from a row's table of all 256 (quot[q + 128] = q / s,
// the same correctly rounded divisions), for a pass bound by instruction issue where a division per
// element was much of it (the gated activation + int8 pass; the RMSNorm forward gained nothing from it
// on the H200, session 13: it is bound by memory).
__device__ inline int int8_code(float y, float s) { return (int)fminf(fmaxf(rintf(y * s), -128.0f), 127.0f); }
__device__ inline float quant_int8_table(const float* quot, float y, float s) { return quot[int8_code(y, s) + 128]; }

// The int8 GEMM's operand (int8_gemm.cu): the codes of eight values as one 8-byte store (p 8-byte aligned),
// and a row's factor, the value of one code step, max(absmax, 1e-5) / 127 (1 / s up to rounding).
__device__ inline void store_codes8(int8_t* p, const float (&y)[8], float s) {
  uint32_t w[2] = {0, 0};
#pragma unroll
  for (int e = 0; e < 8; ++e) w[e >> 2] |= (uint32_t)(uint8_t)(int8_t)int8_code(y[e], s) << (8 * (e & 3));
  *reinterpret_cast<uint2*>(p) = make_uint2(w[0], w[1]);
}
__device__ inline float code_factor(float absmax) { return fmaxf(absmax, 1e-5f) / 127.0f; }
// A norm's output for eight values in place, y = x * r * w[0..8) (rstd r, the f32 weights at w), and the
// largest |y| of them (for the row's int8 absmax).
__device__ inline float scale8_absmax(float (&v)[8], float r, const float* w) {
  float wv[8], m = 0.0f;
  load_f32x8(wv, w);
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    v[e] = v[e] * r * wv[e];
    m = fmaxf(m, fabsf(v[e]));
  }
  return m;
}
// Eight values' int8 quantization from their f32 values y (scale s = 127 / absmax): the effective values q / s in
// bf16 at out_q and, where codes is not null, the codes (both 16- / 8-byte aligned).
__device__ inline void store_quantized8(__nv_bfloat16* out_q, int8_t* codes, const float (&y)[8], float s) {
  float q[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) q[e] = quant_int8(y[e], s);  // from the f32 value, as the CPU path
  store8(out_q, q);
  if (codes) store_codes8(codes, y, s);
}

// Launch shape for N rows of nvec vectors: enough blocks to cover the rows, capped at a few waves
// (the kernels loop).
inline unsigned blocks_for_rows(int N, int nvec) {
  const int per_block = kWarps * (32 / group_lanes(nvec));
  const long b = (N + per_block - 1) / per_block;
  return (unsigned)std::max(1L, std::min(b, 132L * 16));
}

}  // namespace onebit::kernels::cuda::rows
