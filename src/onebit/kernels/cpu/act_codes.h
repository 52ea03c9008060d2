#pragma once
// act_quant_int8's int8 codes, recovered from its float output: the Hard-phase integer forward
// (ternary_gemm.cpp) and the AMX-BF16 backward (bf16x3_gemm.cpp) both need q and the row factor f with
// xq[i,k] ≈ q[i,k] · f_i, and must agree on them. A row's largest |value| is 127/s (the code ±127 of its
// maximum), so s' = 127/max|xq| gives back every code q = round(xq · s') exactly: xq · s' = q · (1 ± a few
// ulp), far from a rounding boundary (vcvtps2dq rounds to nearest even, as act_quant_int8 does).
// f = max|xq|/127 = 1/s' (0 for an all-zero row, whose codes are 0).
#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>

namespace onebit::kernels::cpu {

// Lanes [0, n) of 16 (all for n >= 16, none for n <= 0).
__attribute__((target("avx512f"))) inline __mmask16 lanes16(int n) {
  return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

// max |xq[k]| over one row of `in` values.
__attribute__((target("avx512f"))) inline float act_row_absmax(const float* xq, int in) {
  __m512 m = _mm512_setzero_ps();
  for (int k = 0; k < in; k += 16)
    m = _mm512_maskz_max_ps(0xFFFF, m, _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes16(in - k), xq + k)));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, m);
  return *std::max_element(lanes, lanes + 16);
}

// s' = 127 / absmax, broadcast (0 for a zero row).
__attribute__((target("avx512f"))) inline __m512 act_code_scale(float absmax) {
  return _mm512_set1_ps(absmax > 0.0f ? 127.0f / absmax : 0.0f);
}

// The codes of xq[0..16) (lanes outside mk: code 0) as int32, given s' from act_code_scale.
__attribute__((target("avx512f"))) inline __m512i act_codes16(const float* xq, __mmask16 mk, __m512 s) {
  const __m512i q = _mm512_maskz_cvtps_epi32(0xFFFF, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, xq), s));
  return _mm512_maskz_min_epi32(0xFFFF, _mm512_maskz_max_epi32(0xFFFF, q, _mm512_set1_epi32(-128)),
                                _mm512_set1_epi32(127));
}

}  // namespace onebit::kernels::cpu
#endif
