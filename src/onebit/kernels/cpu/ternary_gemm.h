#pragma once
// The Hard-phase forward of a ternary linear as an exact integer product: y[N,out] = xq[N,in] · Wᵀ where
// every row of xq is act_quant_int8's output (int8 codes q times one per-row factor) and W = g * t with
// codes t in {-1,0,+1}. The int32 dot products Σ q·t are exact; each output is scaled once,
// y = float(Σ q·t) * (rowmax/127 * g), which differs from the f32 product only at rounding level.
// Runs on AVX-512 VNNI (vpdpbusd: 64 u8 x s8 multiply-adds per instruction, 4x the f32 FMA rate);
// elsewhere ternary_gemm_available() is false and callers keep the f32 GEMM.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace onebit::kernels::cpu {

// False without AVX512F/BW/VNNI, or when the environment sets ONEBIT_TERNARY_GEMM=off (A/B timing).
bool ternary_gemm_available();

// Ternary codes of W[out,in], packed once per optimizer step (the weights only change there): panels
// of 32 output columns, each [in/4][32][4] bytes, plus Σ_k t[j,k] per column (the u8 offset's correction).
struct TernaryPack {
  int out = 0, in = 0, kpad = 0;  // kpad: in rounded up to 4
  float scale = 1.0f;             // g
  std::vector<int8_t> codes;      // aligned view starts at codes_offset
  size_t codes_offset = 0;
  std::vector<int32_t> colsum;
  const int8_t* data() const { return codes.data() + codes_offset; }
};

// Widest input the integer path takes: |Σ q·t| <= 127 * in must stay below 2^24 so that its float
// conversion is exact. Wider layers keep the f32 GEMM.
inline constexpr int kTernaryMaxIn = 65536;

// w_eff = g * t (weight_quantize's Hard ternary output); the code is its sign. 0 < in <= kTernaryMaxIn.
void ternary_pack(TernaryPack& p, const float* w_eff, int out, int in, float g);
// y[N, p.out] from xq[N, p.in] (both row-major, dense). Requires ternary_gemm_available().
void ternary_gemm(float* y, const float* xq, int N, const TernaryPack& p);

}  // namespace onebit::kernels::cpu
