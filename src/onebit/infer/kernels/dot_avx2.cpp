// AVX2 kernels (compiled with -mavx2 -mfma -mf16c for this file only; run only where CPUID says so).
// Quantized rows: the stored codes are unsigned (code + 1, a bit, or |code|), so _mm256_maddubs_epi16
// multiplies them with the signed int8 activations; pairs of products sum into int16 lanes that are
// widened to int32 every few blocks, before they could overflow. Activations are in [-127, 127]
// (absmax quantization never produces -128).
#include <immintrin.h>

#include <math.h>

#include <cstring>

#include "onebit/infer/kernels/dot.h"
#include "onebit/infer/kernels/row_prefetch.h"

namespace onebit::infer {

namespace {

// No std:: inline templates in this file: a copy compiled for AVX2 could be the one the linker keeps.
inline int imin(int a, int b) { return a < b ? a : b; }
inline float fmax1(float a, float b) { return a > b ? a : b; }

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Unsigned digit i of a 32-byte block, for each format.
struct T2 {
  static constexpr int kCodes = 128, kDigits = 4;
  __m256i w;
  explicit T2(const uint8_t* p) : w(load(p)) {}
  __m256i digit(int i) const { return _mm256_and_si256(_mm256_srli_epi16(w, 2 * i), _mm256_set1_epi8(3)); }
};
struct T16 {
  static constexpr int kCodes = 160, kDigits = 5;
  __m256i t;
  explicit T16(const uint8_t* p) : t(load(p)) {}
  // digit i = top bits of (q * 3^i mod 256) * 3: 1 when t >= 86, 2 when t >= 171.
  __m256i digit(int i) {
    if (i) t = _mm256_add_epi8(t, _mm256_add_epi8(t, t));
    const __m256i ge1 = _mm256_cmpeq_epi8(_mm256_max_epu8(t, _mm256_set1_epi8((char)86)), t);
    const __m256i ge2 = _mm256_cmpeq_epi8(_mm256_max_epu8(t, _mm256_set1_epi8((char)171)), t);
    return _mm256_sub_epi8(_mm256_setzero_si256(), _mm256_add_epi8(ge1, ge2));
  }
};
struct B1 {
  static constexpr int kCodes = 256, kDigits = 8;
  __m256i w;
  explicit B1(const uint8_t* p) : w(load(p)) {}
  __m256i digit(int i) const { return _mm256_and_si256(_mm256_srli_epi16(w, i), _mm256_set1_epi8(1)); }
};

// raw[j] = sum of stored digit * x over nblocks; at most 8 blocks go into the int16 sums at a time
// (8 blocks * 8 digits * 2 * 2 * 128 fits in int16 for every format).
template <typename Block, int NX>
void dot_digits(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int32_t* raw) {
  __m256i acc[NX];
  for (int j = 0; j < NX; ++j) acc[j] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int b = 0; b < nblocks;) {
    const int end = imin(nblocks, b + 8);
    __m256i s16[NX];
    for (int j = 0; j < NX; ++j) s16[j] = _mm256_setzero_si256();
    for (; b < end; ++b) {
      Block blk(w + (size_t)b * 32);
      const int8_t* xb = x + (size_t)b * Block::kCodes;
      for (int i = 0; i < Block::kDigits; ++i) {
        const __m256i d = blk.digit(i);
        for (int j = 0; j < NX; ++j)
          s16[j] = _mm256_add_epi16(s16[j], _mm256_maddubs_epi16(d, load(xb + j * xs + 32 * i)));
      }
    }
    for (int j = 0; j < NX; ++j) acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(s16[j], ones));
  }
  for (int j = 0; j < NX; ++j) raw[j] = hsum_epi32(acc[j]);
}

template <typename Block>
void dot_raw(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int nx, int32_t* raw) {
  switch (nx) {
    case 1:
      return dot_digits<Block, 1>(w, nblocks, x, xs, raw);
    case 2:
      return dot_digits<Block, 2>(w, nblocks, x, xs, raw);
    case 3:
      return dot_digits<Block, 3>(w, nblocks, x, xs, raw);
    default:
      return dot_digits<Block, 4>(w, nblocks, x, xs, raw);
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

// Four weight rows against one token (decode): each activation load serves four rows' digits.
void ternary2_4rows(const uint8_t* w, size_t row_bytes, int nblocks, const int8_t* x, int32_t xsum, int32_t* out) {
  __m256i acc[4];
  for (int r = 0; r < 4; ++r) acc[r] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1), m3 = _mm256_set1_epi8(3);
  const char* ahead = four_row_prefetch_base(w, row_bytes);
  for (int b = 0; b < nblocks;) {
    const int end = imin(nblocks, b + 8);  // int16 sums: 8 blocks * 4 digits * 2 * 2 * 128 fits
    __m256i s16[4];
    for (int r = 0; r < 4; ++r) s16[r] = _mm256_setzero_si256();
    for (; b < end; ++b) {
      __m256i wv[4];
      for (int r = 0; r < 4; ++r) wv[r] = load(w + r * row_bytes + (size_t)b * 32);
      prefetch_four_row_blocks(ahead, b, 1);
      const int8_t* xb = x + (size_t)b * 128;
      for (int i = 0; i < 4; ++i) {
        const __m256i xv = load(xb + 32 * i);
        for (int r = 0; r < 4; ++r)
          s16[r] = _mm256_add_epi16(
              s16[r], _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(wv[r], 2 * i), m3), xv));
      }
    }
    for (int r = 0; r < 4; ++r) acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(s16[r], ones));
  }
  for (int r = 0; r < 4; ++r) out[r] = hsum_epi32(acc[r]) - xsum;
}

// Q6: 32 consecutive codes (unsigned, code + 32) from the block's two nibble halves and its top-bit
// bytes; piece p < 8 covers codes 32p..32p+31.
inline __m256i q6_piece(const uint8_t* blk, int p) {
  const __m256i lo = load(blk + 32 * (p % 4)), hi = load(blk + 128 + 32 * (p % 2));
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
  const __m256i low = p < 4 ? _mm256_and_si256(lo, m4) : _mm256_and_si256(_mm256_srli_epi16(lo, 4), m4);
  const __m256i top = _mm256_and_si256(_mm256_srli_epi16(hi, 2 * (p / 2)), m2);
  return _mm256_or_si256(low, _mm256_slli_epi16(top, 4));
}

// u * x with u <= 63: a maddubs pair sum stays below 2 * 63 * 127, widened to int32 at once.
template <int NX>
void q6_rows(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int32_t* raw) {
  __m256i acc[NX];
  for (int j = 0; j < NX; ++j) acc[j] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int b = 0; b < nblocks; ++b) {
    const uint8_t* blk = w + (size_t)b * 192;
    const int8_t* xb = x + (size_t)b * 256;
    for (int p = 0; p < 8; ++p) {
      const __m256i u = q6_piece(blk, p);
      for (int j = 0; j < NX; ++j)
        acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(u, load(xb + j * xs + 32 * p)), ones));
    }
  }
  for (int j = 0; j < NX; ++j) raw[j] = hsum_epi32(acc[j]);
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
    default:
      q6_rows<4>(w, nblocks, x, xs, out);
  }
  for (int j = 0; j < nx; ++j) out[j] -= 32 * xsum[j];
}

template <int NX>
void int8_rows(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int32_t* out) {
  __m256i acc[NX];
  for (int j = 0; j < NX; ++j) acc[j] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int k = 0; k < nblocks * 64; k += 32) {
    const __m256i wv = load(w + k), wa = _mm256_abs_epi8(wv);
    for (int j = 0; j < NX; ++j) {
      const __m256i xv = _mm256_sign_epi8(load(x + j * xs + k), wv);  // x * sign(w), |w| unsigned
      acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(wa, xv), ones));
    }
  }
  for (int j = 0; j < NX; ++j) out[j] = hsum_epi32(acc[j]);
}

void dot_int8(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, const int32_t*, int nx, int32_t* out) {
  switch (nx) {
    case 1:
      return int8_rows<1>(w, nblocks, x, xs, out);
    case 2:
      return int8_rows<2>(w, nblocks, x, xs, out);
    case 3:
      return int8_rows<3>(w, nblocks, x, xs, out);
    default:
      return int8_rows<4>(w, nblocks, x, xs, out);
  }
}

inline __m256 load_bf16x8(const uint16_t* p) {
  const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}
inline float bf16_scalar(uint16_t b) {
  const uint32_t u = (uint32_t)b << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
inline __m256 load_f32x8(const float* p) { return _mm256_loadu_ps(p); }
inline float f32_scalar(float f) { return f; }

// Two independent accumulator chains per token: with one, decode's row dot (the f32/bf16 LM head) waited
// on the FMA latency every 8 weights. The same U for every NX keeps a token's summation order, and so
// its bits, independent of how many tokens share the call (prefill chunking); 2 x 4 tokens of
// accumulators fit AVX2's 16 registers.
template <typename W, __m256 (*Load8)(const W*), float (*Load1)(W), int NX>
void dot_float_rows(const W* w, int n, const float* x, size_t xs, float* out) {
  constexpr int U = 2;
  __m256 acc[U][NX];
  for (int u = 0; u < U; ++u)
    for (int j = 0; j < NX; ++j) acc[u][j] = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 * U <= n; k += 8 * U) {
    // Decode's head GEMV streams its rows one after another: ask for each line kRowPrefetchBytes on.
    if constexpr (NX == 1)
      for (int u = 0; u < U; u += 64 / (8 * (int)sizeof(W)))
        __builtin_prefetch(w + k + 8 * u + kRowPrefetchBytes / sizeof(W), 0, 3);
    for (int u = 0; u < U; ++u) {
      const __m256 wv = Load8(w + k + 8 * u);
      for (int j = 0; j < NX; ++j)
        acc[u][j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + j * xs + k + 8 * u), acc[u][j]);
    }
  }
  for (; k + 8 <= n; k += 8) {
    const __m256 wv = Load8(w + k);
    for (int j = 0; j < NX; ++j) acc[0][j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + j * xs + k), acc[0][j]);
  }
  for (int j = 0; j < NX; ++j) {
    __m256 a = acc[0][j];
    for (int u = 1; u < U; ++u) a = _mm256_add_ps(a, acc[u][j]);
    float s = hsum_ps(a);
    for (int t = k; t < n; ++t) s += Load1(w[t]) * x[j * xs + t];
    out[j] = s;
  }
}

template <typename W, __m256 (*Load8)(const W*), float (*Load1)(W)>
void dot_float(const W* w, int n, const float* x, size_t xs, int nx, float* out) {
  switch (nx) {
    case 1:
      return dot_float_rows<W, Load8, Load1, 1>(w, n, x, xs, out);
    case 2:
      return dot_float_rows<W, Load8, Load1, 2>(w, n, x, xs, out);
    case 3:
      return dot_float_rows<W, Load8, Load1, 3>(w, n, x, xs, out);
    default:
      return dot_float_rows<W, Load8, Load1, 4>(w, n, x, xs, out);
  }
}

inline __m256 load_f16x8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float f16_scalar(uint16_t h) { return _cvtsh_ss(h); }

// exp of 8 floats: Cody-Waite range reduction and the degree-6 polynomial of kernels/cpu/vec_math.h
// (~2 ulp), clamped to [-87.3, 88.3].
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// Scores of 4 keys at once (one horizontal reduction for all four), softmax with exp8, then the
// weighted sum of values.
// ks / vs: per-row scales of an int8 cache (nullptr: 1), folded into each row's score and weight.
template <typename KV, __m256 (*Load8)(const KV*), float (*Load1)(KV)>
void attend_rows(const float* q, const KV* k, const float* ks, const KV* v, const float* vs, int n, int hd,
                 float scale, float* scores, float* out) {
  const int hd8 = hd / 8 * 8;
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const KV* k0 = k + (size_t)j * hd;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < hd8; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
      a0 = _mm256_fmadd_ps(qv, Load8(k0 + i), a0);
      a1 = _mm256_fmadd_ps(qv, Load8(k0 + hd + i), a1);
      a2 = _mm256_fmadd_ps(qv, Load8(k0 + 2 * hd + i), a2);
      a3 = _mm256_fmadd_ps(qv, Load8(k0 + 3 * hd + i), a3);
    }
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));  // the 4 dots
    if (hd8 < hd) {
      alignas(16) float t[4];
      _mm_store_ps(t, s);
      for (int u = 0; u < 4; ++u)
        for (int i = hd8; i < hd; ++i) t[u] += q[i] * Load1(k0[(size_t)u * hd + i]);
      s = _mm_load_ps(t);
    }
    s = _mm_mul_ps(s, _mm_set1_ps(scale));
    if (ks) s = _mm_mul_ps(s, _mm_loadu_ps(ks + j));
    _mm_storeu_ps(scores + j, s);
  }
  for (; j < n; ++j) {
    const KV* kj = k + (size_t)j * hd;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < hd8; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), Load8(kj + i), acc);
    float d = hsum_ps(acc);
    for (int i = hd8; i < hd; ++i) d += q[i] * Load1(kj[i]);
    scores[j] = d * scale * (ks ? ks[j] : 1.0f);
  }
  float mx = -INFINITY;
  for (int t = 0; t < n; ++t) mx = fmax1(mx, scores[t]);
  const __m256 mxv = _mm256_set1_ps(mx);
  __m256 sumv = _mm256_setzero_ps();
  int t = 0;
  for (; t + 8 <= n; t += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(scores + t), mxv));
    _mm256_storeu_ps(scores + t, e);
    sumv = _mm256_add_ps(sumv, e);
  }
  float sum = hsum_ps(sumv);
  for (; t < n; ++t) sum += scores[t] = expf(scores[t] - mx);
  const float inv = 1.0f / sum;
  if (hd % 64 == 0) {
    // 64 output values at a time stay in 8 registers over all n positions (no load/store of out per
    // position: that store-to-load chain was most of a decode step's attention time).
    for (int i0 = 0; i0 < hd; i0 += 64) {
      __m256 acc[8];
      for (int u = 0; u < 8; ++u) acc[u] = _mm256_setzero_ps();
      for (int jj = 0; jj < n; ++jj) {
        const KV* vj = v + (size_t)jj * hd + i0;
        const __m256 pv = _mm256_set1_ps(vs ? scores[jj] * vs[jj] : scores[jj]);
        for (int u = 0; u < 8; ++u) acc[u] = _mm256_fmadd_ps(pv, Load8(vj + 8 * u), acc[u]);
      }
      for (int u = 0; u < 8; ++u) _mm256_storeu_ps(out + i0 + 8 * u, _mm256_mul_ps(acc[u], _mm256_set1_ps(inv)));
    }
    return;
  }
  for (int i = 0; i < hd; ++i) out[i] = 0;
  for (int jj = 0; jj < n; ++jj) {
    const KV* vj = v + (size_t)jj * hd;
    const float p = scores[jj] * inv * (vs ? vs[jj] : 1.0f);
    const __m256 pv = _mm256_set1_ps(p);
    for (int i = 0; i < hd8; i += 8)
      _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, Load8(vj + i), _mm256_loadu_ps(out + i)));
    for (int i = hd8; i < hd; ++i) out[i] += p * Load1(vj[i]);
  }
}

template <typename KV, __m256 (*Load8)(const KV*), float (*Load1)(KV)>
void attend(const float* q, const KV* k, const KV* v, int n, int hd, float scale, float* scores, float* out) {
  attend_rows<KV, Load8, Load1>(q, k, nullptr, v, nullptr, n, hd, scale, scores, out);
}

inline __m256 load_i8x8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
inline float i8_scalar(int8_t x) { return (float)x; }

}  // namespace

const DotKernels& avx2_kernels() {
  static const DotKernels k{KernelPath::Avx2,
                            4,
                            dot_ternary2,
                            dot_ternary1_6,
                            dot_binary1,
                            dot_int8,
                            dot_q6,
                            ternary2_4rows,
                            dot_float<float, load_f32x8, f32_scalar>,
                            dot_float<uint16_t, load_bf16x8, bf16_scalar>,
                            attend<uint16_t, load_f16x8, f16_scalar>,
                            attend<float, load_f32x8, f32_scalar>,
                            attend_rows<int8_t, load_i8x8, i8_scalar>};
  return k;
}

}  // namespace onebit::infer
