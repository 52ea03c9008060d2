// Packing, blocking and the f32 epilogue of the bf16x3 backward (bf16x3_gemm.h). AVX-512 through target
// attributes, as ternary_gemm.cpp; the tile instructions live in bf16x3_tile.cpp only.
// Packers, per call (the weights' B operand: per optimizer step, bf16x3_pack_weights):
//  dx: A = dy rows, split (one 16-lane load per 16 k, three 16-bf16 stores);
//  dW: A[j][i] = dy[i][j]·f_i needs dy transposed: 16 token pairs x 16 columns are split, paired into
//      dwords (token i in the low half, as the tile row's bf16 order wants) and transposed 16 x 16 in
//      registers; B = the codes q[i][c] of token pairs (i, i+1) as bf16 dwords, one row of the pair layout.
#include "onebit/kernels/cpu/bf16x3_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "onebit/core/error.h"
#include "onebit/kernels/cpu/act_codes.h"
#include "onebit/kernels/cpu/bf16x3.h"
#include "onebit/kernels/cpu/cpu_features.h"
#include "onebit/kernels/cpu/thread_pool.h"

// GCC 12's avx512fintrin.h builds shift and conversion results from an "undefined" register and then
// warns about it in the inlined header code (as in dot_avx512.cpp and sgemm_avx512.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace onebit::kernels::cpu {

using bf16x3::a_block_elems;
using bf16x3::a_index;
using bf16x3::b_index;
using bf16x3::b_panel_elems;
using bf16x3::kBlock;
using bf16x3::kpad_of;

namespace {

bool packers_available() {
#if defined(__x86_64__)
  static const bool ok =
      (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"));
  return ok;
#else
  return false;
#endif
}

void check_kernel(const bf16x3::TileKernel& k, const char* who) {
  OB_CHECK(packers_available(), who, ": this CPU has no AVX-512");
#if defined(__x86_64__)
  OB_CHECK(&k != &bf16x3::amx_tile_kernel() || amx_bf16_usable(), who, ": AMX-BF16 is not usable here");
#else
  (void)k;
#endif
}

uint16_t* aligned_u16(std::vector<uint16_t>& v, size_t n, size_t* offset = nullptr) {
  v.resize(n + 32);
  const size_t off = (64 - reinterpret_cast<uintptr_t>(v.data()) % 64) % 64 / 2;
  if (offset) *offset = off;
  return v.data() + off;
}

#if defined(__x86_64__)
#define OB_AVX512 __attribute__((target("avx512f,avx512bw")))

// bf16 bits (low half of each lane) of 16 floats, as bf16x3::to_bf16_bits.
OB_AVX512 inline __m512i bf16_bits16(__m512 a) {
  const __m512i u = _mm512_castps_si512(a), mag = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rne = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd), 16);
  const __mmask16 big = _mm512_cmpge_epu32_mask(mag, _mm512_set1_epi32(0x7f7f8000));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(mag, _mm512_set1_epi32(0x7f800000));
  __m512i trunc = _mm512_srli_epi32(u, 16);
  trunc = _mm512_mask_or_epi32(trunc, nan, trunc, _mm512_set1_epi32(0x40));
  return _mm512_mask_mov_epi32(rne, big, trunc);
}

OB_AVX512 inline __m512 bf16_to_f32(__m512i bits) { return _mm512_castsi512_ps(_mm512_slli_epi32(bits, 16)); }

// The three parts of 16 floats (bf16x3::split).
OB_AVX512 inline void split16(__m512 a, __m512i& h, __m512i& m, __m512i& l) {
  h = bf16_bits16(a);
  const __mmask16 finite = _mm512_cmplt_epu32_mask(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)),
                                                   _mm512_set1_epi32(0x7f800000));
  const __m512 r1 = _mm512_maskz_sub_ps(finite, a, bf16_to_f32(h));
  m = bf16_bits16(r1);
  l = bf16_bits16(_mm512_sub_ps(r1, bf16_to_f32(m)));
}

OB_AVX512 inline void store16_u16(uint16_t* dst, __m512i bits) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(bits));
}

// In place: r[j] lane i = old r[i] lane j (interleave 32-bit, then 64-bit, then two 128-bit shuffles).
OB_AVX512 inline void transpose16(__m512i r[16]) {
  __m512i a[16], b[16];
  for (int k = 0; k < 8; ++k) {
    a[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
    a[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
  }
  // b[4k + c], 128-bit lane L: rows 4k..4k+3 of column 4L + c
  for (int k = 0; k < 4; ++k) {
    b[4 * k] = _mm512_unpacklo_epi64(a[4 * k], a[4 * k + 2]);
    b[4 * k + 1] = _mm512_unpackhi_epi64(a[4 * k], a[4 * k + 2]);
    b[4 * k + 2] = _mm512_unpacklo_epi64(a[4 * k + 1], a[4 * k + 3]);
    b[4 * k + 3] = _mm512_unpackhi_epi64(a[4 * k + 1], a[4 * k + 3]);
  }
  // column 4L + c = lane L of b[c], b[4 + c], b[8 + c], b[12 + c]: a 4 x 4 transpose of 128-bit lanes
  for (int c = 0; c < 4; ++c) {
    const __m512i t0 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0x44), t1 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0xEE);
    const __m512i t2 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0x44), t3 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0xEE);
    r[c] = _mm512_shuffle_i32x4(t0, t2, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(t0, t2, 0xDD);
    r[8 + c] = _mm512_shuffle_i32x4(t1, t3, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(t1, t3, 0xDD);
  }
}

// dx's A block mb: rows n = 32·mb + r of dy[N][K] split into the three parts.
OB_AVX512 void pack_a_rows(uint16_t* blk, const float* dy, int N, int K, int kpad, int mb) {
  for (int r = 0; r < kBlock; ++r) {
    const int n = mb * kBlock + r;
    const float* row = n < N ? dy + (size_t)n * K : dy;
    for (int k = 0; k < kpad; k += 16) {
      const __mmask16 mk = n < N ? lanes16(K - k) : (__mmask16)0;
      __m512i h, m, l;
      split16(_mm512_maskz_loadu_ps(mk, row + k), h, m, l);
      store16_u16(blk + a_index(r, k, 0, kpad), h);
      store16_u16(blk + a_index(r, k, 1, kpad), m);
      store16_u16(blk + a_index(r, k, 2, kpad), l);
    }
  }
}

// dW's A block jb, tokens [i0, i0 + 32): A[j][i] = dy[i][j]·f[i] for j < out, i < N (else 0).
OB_AVX512 void pack_a_transposed(uint16_t* blk, const float* dy, const float* f, int N, int out, int kpad, int jb,
                                 int i0) {
  for (int half = 0; half < 2; ++half) {
    const int j0 = jb * kBlock + 16 * half;
    const __mmask16 mj = lanes16(out - j0);
    __m512i v[3][16];
    for (int pi = 0; pi < 16; ++pi) {
      __m512i parts[2][3];
      for (int e = 0; e < 2; ++e) {
        const int i = i0 + 2 * pi + e;
        const __m512 x = i < N ? _mm512_mul_ps(_mm512_maskz_loadu_ps(mj, dy + (size_t)i * out + j0), _mm512_set1_ps(f[i]))
                               : _mm512_setzero_ps();
        split16(x, parts[e][0], parts[e][1], parts[e][2]);
      }
      for (int p = 0; p < 3; ++p) v[p][pi] = _mm512_or_si512(parts[0][p], _mm512_slli_epi32(parts[1][p], 16));
    }
    for (int p = 0; p < 3; ++p) {
      transpose16(v[p]);
      for (int jj = 0; jj < 16; ++jj)
        _mm512_storeu_si512(blk + a_index(16 * half + jj, i0, p, kpad), v[p][jj]);
    }
  }
}

// dW's B rows for the token pair (i, i + 1): the codes of xq's rows as bf16 pairs, and f for both rows.
OB_AVX512 void pack_b_codes(uint16_t* bpack, float* f, const float* xq, int N, int in, int kpad, int i) {
  __m512 s[2];
  for (int e = 0; e < 2; ++e) {
    const int n = i + e;
    const float mx = n < N ? act_row_absmax(xq + (size_t)n * in, in) : 0.0f;
    if (n < N) f[n] = mx / 127.0f;
    s[e] = act_code_scale(mx);
  }
  const int npanels = (in + kBlock - 1) / kBlock;
  for (int np = 0; np < npanels; ++np)
    for (int half = 0; half < 2; ++half) {
      const int c = np * kBlock + 16 * half;
      __m512i w[2];
      for (int e = 0; e < 2; ++e) {
        const int n = i + e;
        w[e] = n < N ? _mm512_srli_epi32(_mm512_castps_si512(_mm512_cvtepi32_ps(
                                              act_codes16(xq + (size_t)n * in + c, lanes16(in - c), s[e]))),
                                          16)
                     : _mm512_setzero_si512();
      }
      _mm512_storeu_si512(bpack + np * b_panel_elems(kpad) + b_index(i, 16 * half),
                          _mm512_or_si512(w[0], _mm512_slli_epi32(w[1], 16)));
    }
}

// Panel np of dx's B: t[k][c] = sign(w_eff[k][np·32 + c]) for k < out (K), c < in.
OB_AVX512 void pack_b_signs(uint16_t* panel, const float* w_eff, int out, int in, int kpad, int np) {
  const __m512i plus = _mm512_set1_epi32(0x3F80), minus = _mm512_set1_epi32(0xBF80);
  for (int k = 0; k < kpad; k += 2)
    for (int half = 0; half < 2; ++half) {
      const int c = np * kBlock + 16 * half;
      __m512i w[2];
      for (int e = 0; e < 2; ++e) {
        const int j = k + e;
        const __m512 x = j < out ? _mm512_maskz_loadu_ps(lanes16(in - c), w_eff + (size_t)j * in + c) : _mm512_setzero_ps();
        const __mmask16 gt = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
        const __mmask16 lt = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        w[e] = _mm512_mask_mov_epi32(_mm512_maskz_mov_epi32(gt, plus), lt, minus);
      }
      _mm512_storeu_si512(panel + b_index(k, 16 * half), _mm512_or_si512(w[0], _mm512_slli_epi32(w[1], 16)));
    }
}

// c[0:mr, 0:nr] = beta·c + scale·s (beta 0: c is not read); s is one 32 x 32 block.
OB_AVX512 void epilogue(float* c, int ldc, int mr, int nr, float beta, float scale, const float* s) {
  const __m512 vs = _mm512_set1_ps(scale), vb = _mm512_set1_ps(beta);
  for (int r = 0; r < mr; ++r)
    for (int half = 0; half < 2; ++half) {
      const __mmask16 mk = lanes16(nr - 16 * half);
      if (!mk) continue;
      float* cr = c + (size_t)r * ldc + 16 * half;
      __m512 v = _mm512_mul_ps(_mm512_load_ps(s + r * kBlock + 16 * half), vs);
      if (beta != 0.0f) v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, cr), vb, v);
      _mm512_mask_storeu_ps(cr, mk, v);
    }
}
#undef OB_AVX512
#endif

// c[M, ncols] = beta·c + scale·A·B over packed operands: tasks of one 32-row block x a group of panels,
// each output block written by one task.
void run_blocks(float* c, int ldc, int M, int ncols, float beta, float scale, const uint16_t* apack,
                const uint16_t* bpack, int kpad, const bf16x3::TileKernel& k) {
#if defined(__x86_64__)
  const int mblocks = (M + kBlock - 1) / kBlock, npanels = (ncols + kBlock - 1) / kBlock;
  const int jgroups = std::clamp((4 * pool_threads() + mblocks - 1) / mblocks, 1, npanels);
  parallel_for((int64_t)mblocks * jgroups, [&](int64_t t) {
    const int mb = (int)(t / jgroups), g = (int)(t % jgroups);
    alignas(64) float s[kBlock * kBlock];
    k.begin();
    for (int jp = npanels * g / jgroups; jp < npanels * (g + 1) / jgroups; ++jp) {
      k.block(apack + mb * a_block_elems(kpad), bpack + jp * b_panel_elems(kpad), kpad, s);
      epilogue(c + (size_t)mb * kBlock * ldc + jp * kBlock, ldc, std::min(kBlock, M - mb * kBlock),
               std::min(kBlock, ncols - jp * kBlock), beta, scale, s);
    }
    k.end();
  });
#else
  (void)c, (void)ldc, (void)M, (void)ncols, (void)beta, (void)scale, (void)apack, (void)bpack, (void)kpad, (void)k;
#endif
}

}  // namespace

#if !defined(__x86_64__)
namespace bf16x3 {
const TileKernel& amx_tile_kernel() {  // never called: bf16x3_available() is false here
  static const TileKernel k{nullptr, nullptr, nullptr};
  return k;
}
}  // namespace bf16x3
#endif

bool bf16x3_available() { return packers_available() && amx_bf16_usable(); }

bool bf16x3_backward_enabled() {
  const char* e = std::getenv("ONEBIT_AMX_BACKWARD");
  return e && std::strcmp(e, "1") == 0 && bf16x3_available();
}

void bf16x3_split(const float* a, size_t n, uint16_t* h, uint16_t* m, uint16_t* l) {
  OB_CHECK(packers_available(), "bf16x3_split: this CPU has no AVX-512");
#if defined(__x86_64__)
  for (size_t i = 0; i < n; i += 16) {
    alignas(64) uint16_t parts[3][16];
    __m512i v[3];
    split16(_mm512_maskz_loadu_ps(lanes16((int)std::min<size_t>(16, n - i)), a + i), v[0], v[1], v[2]);
    for (int p = 0; p < 3; ++p) store16_u16(parts[p], v[p]);
    const size_t cnt = std::min<size_t>(16, n - i);
    std::memcpy(h + i, parts[0], cnt * 2);
    std::memcpy(m + i, parts[1], cnt * 2);
    std::memcpy(l + i, parts[2], cnt * 2);
  }
#else
  (void)a, (void)n, (void)h, (void)m, (void)l;
#endif
}

void bf16x3_pack_weights(Bf16x3Weights& w, const float* w_eff, int out, int in, float g) {
  OB_CHECK(packers_available(), "bf16x3_pack_weights: this CPU has no AVX-512");
  OB_CHECK(out > 0 && in > 0, "bf16x3_pack_weights: empty weight ", out, " x ", in);
  w.out = out;
  w.in = in;
  w.kpad = kpad_of(out);
  w.scale = g;
  const int npanels = (in + kBlock - 1) / kBlock;
  uint16_t* base = aligned_u16(w.buf, (size_t)npanels * b_panel_elems(w.kpad), &w.offset);
#if defined(__x86_64__)
  parallel_for(npanels, [&](int64_t np) { pack_b_signs(base + np * b_panel_elems(w.kpad), w_eff, out, in, w.kpad, (int)np); });
#else
  (void)base;
#endif
}

void bf16x3_backward_dx(float* dx, float beta, const float* dy, int N, const Bf16x3Weights& w,
                        const bf16x3::TileKernel& k) {
  check_kernel(k, "bf16x3_backward_dx");
  if (N <= 0) return;
#if defined(__x86_64__)
  static thread_local std::vector<uint16_t> abuf;
  const int mblocks = (N + kBlock - 1) / kBlock;
  uint16_t* apack = aligned_u16(abuf, (size_t)mblocks * a_block_elems(w.kpad));
  parallel_for(mblocks, [&](int64_t mb) {
    pack_a_rows(apack + mb * a_block_elems(w.kpad), dy, N, w.out, w.kpad, (int)mb);
  });
  run_blocks(dx, w.in, N, w.in, beta, w.scale, apack, w.data(), w.kpad, k);
#else
  (void)dx, (void)beta, (void)dy, (void)w, (void)k;
#endif
}

void bf16x3_backward_dw(float* dw, const float* dy, const float* xq, int N, int out, int in,
                        const bf16x3::TileKernel& k) {
  check_kernel(k, "bf16x3_backward_dw");
  if (N <= 0 || out <= 0 || in <= 0) return;
#if defined(__x86_64__)
  static thread_local std::vector<uint16_t> abuf, bbuf;
  static thread_local std::vector<float> fbuf;
  const int kpad = kpad_of(N), mblocks = (out + kBlock - 1) / kBlock, npanels = (in + kBlock - 1) / kBlock;
  const int kblocks = kpad / kBlock;
  uint16_t* bpack = aligned_u16(bbuf, (size_t)npanels * b_panel_elems(kpad));
  uint16_t* apack = aligned_u16(abuf, (size_t)mblocks * a_block_elems(kpad));
  fbuf.resize(N);
  float* f = fbuf.data();
  // Token pairs in blocks of 32 tokens: codes and row factors first (A needs f), then the split A.
  parallel_for(kblocks, [&](int64_t kb) {
    for (int i = (int)kb * kBlock; i < (int)(kb + 1) * kBlock; i += 2) pack_b_codes(bpack, f, xq, N, in, kpad, i);
  });
  parallel_for((int64_t)mblocks * kblocks, [&](int64_t t) {
    const int jb = (int)(t / kblocks), kb = (int)(t % kblocks);
    pack_a_transposed(apack + jb * a_block_elems(kpad), dy, f, N, out, kpad, jb, kb * kBlock);
  });
  run_blocks(dw, in, out, in, 1.0f, 1.0f, apack, bpack, kpad, k);
#else
  (void)dw, (void)dy, (void)xq, (void)N, (void)out, (void)in, (void)k;
#endif
}

}  // namespace onebit::kernels::cpu
