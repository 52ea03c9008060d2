// Exact int8 x ternary GEMM on AVX-512 VNNI. vpdpbusd multiplies unsigned by signed bytes, so the
// activation codes q in [-128,127] go in as u = q + 128 and the per-column Σ_k t[j,k] * 128 is taken
// off the int32 sum afterwards (|Σ| <= 255 * in, no overflow; |Σ q·t| <= 127 * in < 2^24 for in <= kTernaryMaxIn,
// so its float conversion is exact too). Register tile: 8 rows x 32 columns = 16 zmm int32 accumulators; per group
// of 4 k: two 64-byte loads of the weight panel, eight 4-byte broadcasts of activation codes, packed per
// 8-row block as [k/4][8][4] bytes by the same pass that turns act_quant_int8's floats back into codes.
// Tasks are (64-row block) x (group of column panels), each output in exactly one task, and the
// integer sums are order-independent, so results do not depend on the thread count.
#include "onebit/kernels/cpu/ternary_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "onebit/core/error.h"
#include "onebit/kernels/cpu/act_codes.h"
#include "onebit/kernels/cpu/scratch.h"
#include "onebit/kernels/cpu/thread_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace onebit::kernels::cpu {
namespace {

constexpr int MR = 8, NR = 32, MC = 64;

#if defined(__x86_64__)
// acc += u8 x s8 dot products of 4, in place (GCC 12 otherwise copies and spills the accumulators of
// the intrinsic every iteration).
__attribute__((target("avx512f,avx512vnni"))) inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

// Codes of one act_quant_int8 output row (act_codes.h), as u = q + 128, written into its MR-row block of
// the packed activations ([k/4][MR][4] bytes: the kernel broadcasts a row's 4 codes from one pointer).
// Padding k gets code 0. Returns 1/s' (0 for a zero row).
__attribute__((target("avx512f,avx512bw,avx512vnni"))) float pack_row_codes(uint8_t* dst, const float* xq, int in,
                                                                          int kpad) {
  const float mx = act_row_absmax(xq, in);
  const __m512 s = act_code_scale(mx);
  const __m512i off = _mm512_set1_epi32(128);
  const int kq = kpad / 4;
  for (int k = 0; k < kpad; k += 16) {
    const __m512i q = _mm512_add_epi32(act_codes16(xq + k, lanes16(in - k), s), off);
    alignas(16) uint8_t bytes[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(bytes), _mm512_maskz_cvtepi32_epi8(0xFFFF, q));
    for (int g = 0; g < 4 && k / 4 + g < kq; ++g) std::memcpy(dst + (size_t)(k / 4 + g) * MR * 4, bytes + 4 * g, 4);
  }
  return mx / 127.0f;
}

// y[r, 0:nr] = (Σ_k u[r,k] * t[k, col] - 128 * colsum[col]) * rs[r] for r < mr; Ap is one packed MR-row
// block (rows past mr hold code 0 and are not stored), Bp one packed 32-column weight panel.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void kernel_8x32(int kq, const uint8_t* Ap, int mr,
                                                                       const int8_t* Bp, const int32_t* colsum,
                                                                       const float* rs, float* y, int ldy, int nr) {
  __m512i c[MR][2];
  for (int r = 0; r < MR; ++r) c[r][0] = c[r][1] = _mm512_setzero_si512();
  for (int k = 0; k < kq; ++k) {
    const __m512i b0 = _mm512_load_si512(Bp), b1 = _mm512_load_si512(Bp + 64);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      int32_t quad;
      std::memcpy(&quad, Ap + 4 * r, 4);
      const __m512i av = _mm512_set1_epi32(quad);
      c[r][0] = dpbusd(c[r][0], av, b0);
      c[r][1] = dpbusd(c[r][1], av, b1);
    }
    Ap += MR * 4;
    Bp += 128;
  }
  const __m512i k128 = _mm512_set1_epi32(128);
  const __m512i corr0 = _mm512_mullo_epi32(_mm512_loadu_si512(colsum), k128);
  const __m512i corr1 = _mm512_mullo_epi32(_mm512_loadu_si512(colsum + 16), k128);
  const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1);
  for (int r = 0; r < mr; ++r) {
    const __m512 s = _mm512_set1_ps(rs[r]);
    float* yr = y + (size_t)r * ldy;
    _mm512_mask_storeu_ps(yr, m0, _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(m0, _mm512_sub_epi32(c[r][0], corr0)), s));
    _mm512_mask_storeu_ps(yr + 16, m1, _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(m1, _mm512_sub_epi32(c[r][1], corr1)), s));
  }
}
#endif

}  // namespace

bool ternary_gemm_available() {
#if defined(__x86_64__)
  static const bool ok = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") &&
                                                    __builtin_cpu_supports("avx512bw") &&
                                                    __builtin_cpu_supports("avx512vnni")) &&
                         !(std::getenv("ONEBIT_TERNARY_GEMM") && std::string(std::getenv("ONEBIT_TERNARY_GEMM")) == "off");
  return ok;
#else
  return false;
#endif
}

void ternary_pack(TernaryPack& p, const float* w_eff, int out, int in, float g) {
  OB_CHECK(in > 0 && in <= kTernaryMaxIn, "ternary_pack: in_features ", in, " outside (0, ", kTernaryMaxIn, "]");
  const int npanels = (out + NR - 1) / NR;
  p.out = out;
  p.in = in;
  p.kpad = (in + 3) / 4 * 4;
  p.scale = g;
  const size_t panel = (size_t)p.kpad * NR;
  p.codes.resize(npanels * panel + 64);
  p.codes_offset = (64 - reinterpret_cast<uintptr_t>(p.codes.data()) % 64) % 64;
  p.colsum.assign((size_t)npanels * NR, 0);
  int8_t* base = p.codes.data() + p.codes_offset;
  parallel_for(npanels, [&](int64_t jp) {
    int8_t* dst = base + jp * panel;
    std::memset(dst, 0, panel);
    for (int c = 0; c < NR; ++c) {
      const int j = (int)jp * NR + c;
      if (j >= out) break;
      const float* wr = w_eff + (size_t)j * in;
      int32_t sum = 0;
      for (int k = 0; k < in; ++k) {
        const int8_t t = (int8_t)((wr[k] > 0.0f) - (wr[k] < 0.0f));
        dst[(size_t)(k / 4) * NR * 4 + c * 4 + k % 4] = t;
        sum += t;
      }
      p.colsum[j] = sum;
    }
  });
}

void ternary_gemm(float* y, const float* xq, int N, const TernaryPack& p) {
  OB_CHECK(ternary_gemm_available(), "ternary_gemm: this CPU has no AVX-512 VNNI");
#if defined(__x86_64__)
  if (N <= 0 || p.out <= 0) return;
  static thread_local std::vector<uint8_t> ubuf;
  static thread_local std::vector<float> rbuf;
  const int mpanels = (N + MR - 1) / MR;
  const size_t apanel = (size_t)p.kpad * MR;
  uint8_t* U = aligned_scratch(ubuf, mpanels * apanel);
  rbuf.assign((size_t)mpanels * MR, 0.0f);
  float* rs = rbuf.data();
  parallel_for(mpanels, [&](int64_t ip) {
    uint8_t* blk = U + ip * apanel;
    const int rows = std::min(MR, N - (int)ip * MR);
    if (rows < MR) std::memset(blk, 128, apanel);  // rows past N: code 0, never stored
    for (int r = 0; r < rows; ++r) {
      const int n = (int)ip * MR + r;
      rs[n] = pack_row_codes(blk + 4 * r, xq + (size_t)n * p.in, p.in, p.kpad) * p.scale;
    }
  });
  const int npanels = (p.out + NR - 1) / NR, mblocks = (N + MC - 1) / MC;
  const int jgroups = std::clamp((4 * pool_threads() + mblocks - 1) / mblocks, 1, npanels);
  const size_t panel = (size_t)p.kpad * NR;
  parallel_for((int64_t)mblocks * jgroups, [&](int64_t t) {
    const int i0 = (int)(t / jgroups) * MC, g = (int)(t % jgroups), i1 = std::min(N, i0 + MC);
    for (int jp = npanels * g / jgroups; jp < npanels * (g + 1) / jgroups; ++jp)
      for (int i = i0; i < i1; i += MR)
        kernel_8x32(p.kpad / 4, U + (size_t)(i / MR) * apanel, std::min(MR, i1 - i), p.data() + jp * panel,
                    p.colsum.data() + jp * NR, rs + i, y + (size_t)i * p.out + jp * NR, p.out,
                    std::min(NR, p.out - jp * NR));
  });
#endif
}

}  // namespace onebit::kernels::cpu
