// AVX-512 VNNI kernels (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni for this file
// only). vpdpbusd multiplies unsigned stored codes with signed int8 activations and sums four
// products straight into int32 lanes (no int16 stage to overflow). A 512-bit register holds two
// 32-byte blocks; the activations of the two blocks are loaded as two halves. An odd last block runs
// at 256 bits. Attention is the AVX2 one.
// GCC 12's avx512fintrin.h builds the results of _mm512_extracti64x4_epi64 / _mm512_inserti64x4 from an
// "undefined" register and then warns about it being uninitialized in the inlined header code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "onebit/infer/kernels/dot.h"
#include "onebit/infer/kernels/row_prefetch.h"

namespace onebit::infer {

namespace {

inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m512i pair(const int8_t* lo, const int8_t* hi) {
  return _mm512_inserti64x4(_mm512_zextsi256_si512(load256(lo)), load256(hi), 1);
}
inline int32_t hsum256(__m256i v);
// Not _mm512_reduce_add_epi32: GCC 12's version warns about an uninitialized temporary.
inline int32_t hsum512(__m512i v) {
  return hsum256(_mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)));
}
inline int32_t hsum256(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Digit i of two blocks (512 bits) or one block (256 bits), per format.
struct T2 {
  static constexpr int kCodes = 128, kDigits = 4;
  static __m512i digit(__m512i w, int i) { return _mm512_and_si512(_mm512_srli_epi16(w, 2 * i), _mm512_set1_epi8(3)); }
  static __m256i digit(__m256i w, int i) { return _mm256_and_si256(_mm256_srli_epi16(w, 2 * i), _mm256_set1_epi8(3)); }
  static void step(__m512i&, int) {}
  static void step(__m256i&, int) {}
};
struct T16 {
  static constexpr int kCodes = 160, kDigits = 5;
  // `t` is advanced to q * 3^i (mod 256) by step(); the digit is 1 for t >= 86, 2 for t >= 171.
  static void step(__m512i& t, int i) {
    if (i) t = _mm512_add_epi8(t, _mm512_add_epi8(t, t));
  }
  static void step(__m256i& t, int i) {
    if (i) t = _mm256_add_epi8(t, _mm256_add_epi8(t, t));
  }
  static __m512i digit(__m512i t, int) {
    const __m512i one = _mm512_set1_epi8(1);
    const __mmask64 ge1 = _mm512_cmpge_epu8_mask(t, _mm512_set1_epi8((char)86));
    const __mmask64 ge2 = _mm512_cmpge_epu8_mask(t, _mm512_set1_epi8((char)171));
    return _mm512_add_epi8(_mm512_maskz_mov_epi8(ge1, one), _mm512_maskz_mov_epi8(ge2, one));
  }
  static __m256i digit(__m256i t, int) {
    const __m256i one = _mm256_set1_epi8(1);
    const __mmask32 ge1 = _mm256_cmpge_epu8_mask(t, _mm256_set1_epi8((char)86));
    const __mmask32 ge2 = _mm256_cmpge_epu8_mask(t, _mm256_set1_epi8((char)171));
    return _mm256_add_epi8(_mm256_maskz_mov_epi8(ge1, one), _mm256_maskz_mov_epi8(ge2, one));
  }
};
struct B1 {
  static constexpr int kCodes = 256, kDigits = 8;
  static __m512i digit(__m512i w, int i) { return _mm512_and_si512(_mm512_srli_epi16(w, i), _mm512_set1_epi8(1)); }
  static __m256i digit(__m256i w, int i) { return _mm256_and_si256(_mm256_srli_epi16(w, i), _mm256_set1_epi8(1)); }
  static void step(__m512i&, int) {}
  static void step(__m256i&, int) {}
};

template <typename F, int NX>
void dot_digits(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int32_t* raw) {
  __m512i acc[NX];
  for (int j = 0; j < NX; ++j) acc[j] = _mm512_setzero_si512();
  int b = 0;
  for (; b + 2 <= nblocks; b += 2) {
    __m512i wv = load512(w + (size_t)b * 32);
    const int8_t* x0 = x + (size_t)b * F::kCodes;
    for (int i = 0; i < F::kDigits; ++i) {
      F::step(wv, i);
      const __m512i d = F::digit(wv, i);
      for (int j = 0; j < NX; ++j)
        acc[j] = _mm512_dpbusd_epi32(acc[j], d, pair(x0 + j * xs + 32 * i, x0 + j * xs + F::kCodes + 32 * i));
    }
  }
  __m256i tail[NX];
  for (int j = 0; j < NX; ++j) tail[j] = _mm256_setzero_si256();
  if (b < nblocks) {
    __m256i wv = load256(w + (size_t)b * 32);
    const int8_t* x0 = x + (size_t)b * F::kCodes;
    for (int i = 0; i < F::kDigits; ++i) {
      F::step(wv, i);
      const __m256i d = F::digit(wv, i);
      for (int j = 0; j < NX; ++j) tail[j] = _mm256_dpbusd_epi32(tail[j], d, load256(x0 + j * xs + 32 * i));
    }
  }
  for (int j = 0; j < NX; ++j) raw[j] = hsum512(acc[j]) + hsum256(tail[j]);
}

template <typename F>
void dot_raw(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int nx, int32_t* raw) {
  switch (nx) {
    case 1:
      return dot_digits<F, 1>(w, nblocks, x, xs, raw);
    case 2:
      return dot_digits<F, 2>(w, nblocks, x, xs, raw);
    case 3:
      return dot_digits<F, 3>(w, nblocks, x, xs, raw);
    case 4:
      return dot_digits<F, 4>(w, nblocks, x, xs, raw);
    case 5:
      return dot_digits<F, 5>(w, nblocks, x, xs, raw);
    case 6:
      return dot_digits<F, 6>(w, nblocks, x, xs, raw);
    case 7:
      return dot_digits<F, 7>(w, nblocks, x, xs, raw);
    default:
      return dot_digits<F, 8>(w, nblocks, x, xs, raw);
  }
}

void dot_ternary2(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, const int32_t* xsum, int nx,
                  int32_t* out) {
  dot_raw<T2>(w, nblocks, x, xs, nx, out);
  for (int j = 0; j < nx; ++j) out[j] -= xsum[j];
}

void dot_ternary1_6(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, const int32_t* xsum, int nx,
                    int32_t* out) {
  dot_raw<T16>(w, nblocks, x, xs, nx, out);
  for (int j = 0; j < nx; ++j) out[j] -= xsum[j];
}

void dot_binary1(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, const int32_t* xsum, int nx,
                 int32_t* out) {
  dot_raw<B1>(w, nblocks, x, xs, nx, out);
  for (int j = 0; j < nx; ++j) out[j] = 2 * out[j] - xsum[j];
}

// Four weight rows against one token: each pair of activation half-loads serves four rows' digits.
// Two ways to take digit i out of a weight byte:
//   shifted (kMasked false): (w >> 2i) & 3, three vector operations with the product;
//   masked  (kMasked true):  w & 3 << 2i leaves digit * 4^i (at most 2 * 64 = 128 as an unsigned byte),
//     two operations. Each digit then needs its own accumulator, since its products carry the factor
//     4^i; every lane of digit i's accumulator is a multiple of 4^i, so the arithmetic shift that
//     scales it back at the end is exact, negative sums included.
// Intel cores issue 512-bit shifts and vpdpbusd on the same port, so the masked form frees that port
// for the products; on AMD's Zen cores it measured a few percent slower (design notes "2-bit decode
// GEMV"). An odd last block runs at 256 bits, shifted.
template <bool kMasked>
void ternary2_4rows_t(const uint8_t* w, size_t row_bytes, int nblocks, const int8_t* x, int32_t xsum, int32_t* out) {
  constexpr int kAcc = kMasked ? 4 : 1;  // accumulators per row
  __m512i acc[4][kAcc];
  for (int r = 0; r < 4; ++r)
    for (int i = 0; i < kAcc; ++i) acc[r][i] = _mm512_setzero_si512();
  const __m512i m3 = _mm512_set1_epi8(3);
  const char* ahead = four_row_prefetch_base(w, row_bytes);
  int b = 0;
  for (; b + 2 <= nblocks; b += 2) {
    __m512i wv[4];
    for (int r = 0; r < 4; ++r) wv[r] = load512(w + r * row_bytes + (size_t)b * 32);
    prefetch_four_row_blocks(ahead, b, 2);
    const int8_t* x0 = x + (size_t)b * 128;
    for (int i = 0; i < 4; ++i) {
      const __m512i xv = pair(x0 + 32 * i, x0 + 128 + 32 * i);
      for (int r = 0; r < 4; ++r) {
        const __m512i d = kMasked ? _mm512_and_si512(wv[r], _mm512_set1_epi8((char)(3 << (2 * i))))
                                  : _mm512_and_si512(_mm512_srli_epi16(wv[r], 2 * i), m3);
        __m512i& a = acc[r][kMasked ? i : 0];
        a = _mm512_dpbusd_epi32(a, d, xv);
      }
    }
  }
  __m256i tail[4];
  for (int r = 0; r < 4; ++r) tail[r] = _mm256_setzero_si256();
  if (b < nblocks) {
    const int8_t* x0 = x + (size_t)b * 128;
    for (int r = 0; r < 4; ++r) {
      const __m256i wv = load256(w + r * row_bytes + (size_t)b * 32);
      for (int i = 0; i < 4; ++i)
        tail[r] = _mm256_dpbusd_epi32(tail[r], T2::digit(wv, i), load256(x0 + 32 * i));
    }
  }
  for (int r = 0; r < 4; ++r) {
    __m512i s = acc[r][0];
    if constexpr (kMasked)
      s = _mm512_add_epi32(_mm512_add_epi32(s, _mm512_srai_epi32(acc[r][1], 2)),
                           _mm512_add_epi32(_mm512_srai_epi32(acc[r][2], 4), _mm512_srai_epi32(acc[r][3], 6)));
    out[r] = hsum512(s) + hsum256(tail[r]) - xsum;
  }
}

void ternary2_4rows(const uint8_t* w, size_t row_bytes, int nblocks, const int8_t* x, int32_t xsum, int32_t* out) {
  ternary2_4rows_t<false>(w, row_bytes, nblocks, x, xsum, out);
}
void ternary2_4rows_masked(const uint8_t* w, size_t row_bytes, int nblocks, const int8_t* x, int32_t xsum,
                           int32_t* out) {
  ternary2_4rows_t<true>(w, row_bytes, nblocks, x, xsum, out);
}

// Q6, 64 codes per register: piece p < 4 covers codes 64p..64p+63 (the nibble bytes 0..63 hold codes
// 0..63 and 128..191, bytes 64..127 codes 64..127 and 192..255; the 64 top-bit bytes all four).
template <int NX>
void q6_rows(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int32_t* raw) {
  __m512i acc[NX];
  for (int j = 0; j < NX; ++j) acc[j] = _mm512_setzero_si512();
  const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
  for (int b = 0; b < nblocks; ++b) {
    const uint8_t* blk = w + (size_t)b * 192;
    if constexpr (NX == 1)  // decode's head GEMV: rows stream one after another
      for (int j = 0; j < 3; ++j) __builtin_prefetch(blk + kRowPrefetchBytes + 64 * j, 0, 3);
    const __m512i l0 = load512(blk), l1 = load512(blk + 64), h = load512(blk + 128);
    const __m512i u[4] = {
        _mm512_or_si512(_mm512_and_si512(l0, m4), _mm512_and_si512(_mm512_slli_epi16(h, 4), m30)),
        _mm512_or_si512(_mm512_and_si512(l1, m4), _mm512_and_si512(_mm512_slli_epi16(h, 2), m30)),
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0, 4), m4), _mm512_and_si512(h, m30)),
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4), _mm512_and_si512(_mm512_srli_epi16(h, 2), m30))};
    const int8_t* xb = x + (size_t)b * 256;
    for (int p = 0; p < 4; ++p)
      for (int j = 0; j < NX; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], u[p], load512(xb + j * xs + 64 * p));
  }
  for (int j = 0; j < NX; ++j) raw[j] = hsum512(acc[j]);
}

void dot_q6(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, const int32_t* xsum, int nx, int32_t* out) {
  switch (nx) {
    case 1:
      q6_rows<1>(w, nblocks, x, xs, out);
      break;
    case 2:
      q6_rows<2>(w, nblocks, x, xs, out);
      break;
    case 3:
      q6_rows<3>(w, nblocks, x, xs, out);
      break;
    case 4:
      q6_rows<4>(w, nblocks, x, xs, out);
      break;
    case 5:
      q6_rows<5>(w, nblocks, x, xs, out);
      break;
    case 6:
      q6_rows<6>(w, nblocks, x, xs, out);
      break;
    case 7:
      q6_rows<7>(w, nblocks, x, xs, out);
      break;
    default:
      q6_rows<8>(w, nblocks, x, xs, out);
  }
  for (int j = 0; j < nx; ++j) out[j] -= 32 * xsum[j];
}

template <int NX>
void int8_rows(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int32_t* out) {
  __m512i acc[NX];
  for (int j = 0; j < NX; ++j) acc[j] = _mm512_setzero_si512();
  const __m512i zero = _mm512_setzero_si512();
  for (int k = 0; k < nblocks * 64; k += 64) {
    // Decode's head GEMV streams the rows one after another: ask for the line kRowPrefetchBytes on.
    if constexpr (NX == 1) __builtin_prefetch(w + k + kRowPrefetchBytes, 0, 3);
    const __m512i wv = load512(w + k), wa = _mm512_abs_epi8(wv);
    const __mmask64 neg = _mm512_movepi8_mask(wv);
    for (int j = 0; j < NX; ++j) {
      const __m512i xv = load512(x + j * xs + k);
      acc[j] = _mm512_dpbusd_epi32(acc[j], wa, _mm512_mask_sub_epi8(xv, neg, zero, xv));  // x * sign(w)
    }
  }
  for (int j = 0; j < NX; ++j) out[j] = hsum512(acc[j]);
}

void dot_int8(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, const int32_t*, int nx, int32_t* out) {
  switch (nx) {
    case 1:
      return int8_rows<1>(w, nblocks, x, xs, out);
    case 2:
      return int8_rows<2>(w, nblocks, x, xs, out);
    case 3:
      return int8_rows<3>(w, nblocks, x, xs, out);
    case 4:
      return int8_rows<4>(w, nblocks, x, xs, out);
    case 5:
      return int8_rows<5>(w, nblocks, x, xs, out);
    case 6:
      return int8_rows<6>(w, nblocks, x, xs, out);
    case 7:
      return int8_rows<7>(w, nblocks, x, xs, out);
    default:
      return int8_rows<8>(w, nblocks, x, xs, out);
  }
}

// f32 and bf16 weight rows against f32 activations (the LM head) at 16 lanes, with four independent
// accumulator chains per token so that decode's row dot is not held to one FMA per latency (with one
// chain the bf16 head streamed ~4 bytes of weights per cycle, below a core's share of memory
// bandwidth), and the tail by masked loads. The same chains for every NX keep a token's summation
// order, and so its bits, independent of how many tokens share the call (prefill chunking).
inline __m512 load_f32x16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load_bf16x16(const uint16_t* p, __mmask16 m) {
  const __m512i u = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}

template <typename W, __m512 (*Load16)(const W*, __mmask16), int NX>
void dot_float_rows(const W* w, int n, const float* x, size_t xs, float* out) {
  constexpr int U = 4;
  constexpr __mmask16 all = 0xFFFF;
  __m512 acc[U][NX];
  for (int u = 0; u < U; ++u)
    for (int j = 0; j < NX; ++j) acc[u][j] = _mm512_setzero_ps();
  int k = 0;
  for (; k + 16 * U <= n; k += 16 * U) {
    // Decode's head GEMV streams its rows one after another: ask for each line kRowPrefetchBytes on.
    if constexpr (NX == 1)
      for (int u = 0; u < U; u += 64 / (16 * (int)sizeof(W)))
        __builtin_prefetch(w + k + 16 * u + kRowPrefetchBytes / sizeof(W), 0, 3);
    for (int u = 0; u < U; ++u) {
      const __m512 wv = Load16(w + k + 16 * u, all);
      for (int j = 0; j < NX; ++j)
        acc[u][j] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + j * xs + k + 16 * u), acc[u][j]);
    }
  }
  for (; k < n; k += 16) {
    const __mmask16 m = n - k >= 16 ? all : (__mmask16)((1u << (n - k)) - 1);
    const __m512 wv = Load16(w + k, m);
    for (int j = 0; j < NX; ++j) acc[0][j] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + j * xs + k), acc[0][j]);
  }
  for (int j = 0; j < NX; ++j) {
    __m512 a = acc[0][j];
    for (int u = 1; u < U; ++u) a = _mm512_add_ps(a, acc[u][j]);
    out[j] = _mm512_reduce_add_ps(a);
  }
}

template <typename W, __m512 (*Load16)(const W*, __mmask16)>
void dot_float(const W* w, int n, const float* x, size_t xs, int nx, float* out) {
  switch (nx) {
    case 1:
      return dot_float_rows<W, Load16, 1>(w, n, x, xs, out);
    case 2:
      return dot_float_rows<W, Load16, 2>(w, n, x, xs, out);
    case 3:
      return dot_float_rows<W, Load16, 3>(w, n, x, xs, out);
    default:
      return dot_float_rows<W, Load16, 4>(w, n, x, xs, out);
  }
}

}  // namespace

const DotKernels& avx512vnni_shifted_kernels() {
  static const DotKernels k = [] {
    DotKernels t = avx2_kernels();
    t.path = KernelPath::Avx512Vnni;
    t.max_rows = 8;  // 8 zmm accumulators of 32 (AVX2 has 16 ymm registers: 4)
    t.ternary2 = dot_ternary2;
    t.ternary1_6 = dot_ternary1_6;
    t.binary1 = dot_binary1;
    t.int8 = dot_int8;
    t.q6 = dot_q6;
    t.ternary2_4rows = ternary2_4rows;
    t.f32 = dot_float<float, load_f32x16>;
    t.bf16 = dot_float<uint16_t, load_bf16x16>;
    return t;
  }();
  return k;
}

const DotKernels& avx512vnni_masked_kernels() {
  static const DotKernels k = [] {
    DotKernels t = avx512vnni_shifted_kernels();
    t.ternary2_4rows = ternary2_4rows_masked;
    return t;
  }();
  return k;
}

// The decode GEMV by vendor, as measured (bench_infer_kernels, one thread, 2026-12-03): on the
// Sapphire Rapids Xeon the masked form streamed the 1b and 2B-4T shapes 6-14% faster (1b gate/up 25.9
// vs 22.7 GB/s); on the Zen 5 EPYC the shifted one was as fast or faster (3-5% in session 7).
const DotKernels& avx512vnni_kernels() {
  static const bool intel = (__builtin_cpu_init(), __builtin_cpu_is("intel"));
  return intel ? avx512vnni_masked_kernels() : avx512vnni_shifted_kernels();
}

}  // namespace onebit::infer
