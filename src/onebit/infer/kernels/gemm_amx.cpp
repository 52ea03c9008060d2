// AMX-INT8 prefill kernels (compiled with -mamx-tile -mamx-int8 and the AVX-512 flags for this file
// only; run only where amx::usable()). See gemm_amx.h for the roles of the operands.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "onebit/infer/kernels/gemm_amx.h"
#include "onebit/kernels/cpu/amx_tile_config.h"

#include <immintrin.h>

#include <cstring>

namespace onebit::infer::amx {

namespace {

using TileConfig = kernels::cpu::AmxTileConfig;

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline void store256(void* p, __m256i v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }

// One packed row into `nblocks` blocks of signed values at dst (per packed_weights.h's layouts).
void decode_t2(const uint8_t* w, int nblocks, int8_t* dst) {
  const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  for (int b = 0; b < nblocks; ++b) {
    const __m256i v = load256(w + (size_t)b * 32);
    int8_t* d = dst + (size_t)b * 128;
    for (int i = 0; i < 4; ++i) store256(d + 32 * i, _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 2 * i), m3), one));
  }
}

void decode_t16(const uint8_t* w, int nblocks, int8_t* dst) {
  // Digit i of byte q is the top bits of (q * 3^i mod 256) * 3: 0 below 86, 1 below 171, else 2.
  const __m256i one = _mm256_set1_epi8(1), t86 = _mm256_set1_epi8((char)86), t171 = _mm256_set1_epi8((char)171);
  for (int b = 0; b < nblocks; ++b) {
    __m256i t = load256(w + (size_t)b * 32);
    int8_t* d = dst + (size_t)b * 160;
    for (int i = 0; i < 5; ++i) {
      if (i) t = _mm256_add_epi8(t, _mm256_add_epi8(t, t));
      const __mmask32 ge1 = _mm256_cmpge_epu8_mask(t, t86), ge2 = _mm256_cmpge_epu8_mask(t, t171);
      // -1 + [t >= 86] + [t >= 171]
      const __m256i v = _mm256_sub_epi8(_mm256_add_epi8(_mm256_maskz_mov_epi8(ge1, one), _mm256_maskz_mov_epi8(ge2, one)), one);
      store256(d + 32 * i, v);
    }
  }
}

void decode_b1(const uint8_t* w, int nblocks, int8_t* dst) {
  const __m256i one = _mm256_set1_epi8(1), m1 = _mm256_set1_epi8(-1);
  for (int b = 0; b < nblocks; ++b) {
    const __m256i v = load256(w + (size_t)b * 32);
    int8_t* d = dst + (size_t)b * 256;
    for (int i = 0; i < 8; ++i) {
      const __mmask32 set = _mm256_test_epi8_mask(_mm256_srli_epi16(v, i), one);
      store256(d + 32 * i, _mm256_mask_mov_epi8(m1, set, one));  // bit 1 = +1, bit 0 = -1
    }
  }
}

void decode_q6(const uint8_t* w, int nblocks, int8_t* dst) {
  const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30), off = _mm256_set1_epi8(32);
  for (int b = 0; b < nblocks; ++b) {
    const uint8_t* blk = w + (size_t)b * 192;
    int8_t* d = dst + (size_t)b * 256;
    // Codes k and k + 128 share nibble byte k % 128; the top bits of codes j, j+64, j+128, j+192 share
    // byte 128 + j. 32 codes at a time: c0 = 32 * half within each quarter.
    for (int h = 0; h < 2; ++h) {
      const __m256i hi = load256(blk + 128 + 32 * h);  // top bits of codes 32h + j + 64q, q = 0..3
      const __m256i lo0 = load256(blk + 32 * h), lo1 = load256(blk + 64 + 32 * h);
      const __m256i u[4] = {
          _mm256_or_si256(_mm256_and_si256(lo0, m4), _mm256_and_si256(_mm256_slli_epi16(hi, 4), m30)),
          _mm256_or_si256(_mm256_and_si256(lo1, m4), _mm256_and_si256(_mm256_slli_epi16(hi, 2), m30)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo0, 4), m4), _mm256_and_si256(hi, m30)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(hi, 2), m30))};
      for (int q = 0; q < 4; ++q) store256(d + 64 * q + 32 * h, _mm256_sub_epi8(u[q], off));
    }
  }
}

}  // namespace

void pack_acts(const int8_t* x, size_t x_stride, int N, int npad, int k64, int8_t* xv, int n0, int n1) {
  // A transpose of 4-byte groups: token n's group g lands at xv[g][n].
  const int groups = k64 / 4;
  auto* out = reinterpret_cast<uint32_t*>(xv);
  for (int n = n0; n < n1; ++n) {
    if (n < N) {
      const int8_t* row = x + (size_t)n * x_stride;
      for (int g = 0; g < groups; ++g) {
        uint32_t v;
        std::memcpy(&v, row + 4 * g, 4);
        out[(size_t)g * npad + n] = v;
      }
    } else {
      for (int g = 0; g < groups; ++g) out[(size_t)g * npad + n] = 0;
    }
  }
}

void decode_rows(Codes f, const uint8_t* w, size_t row_bytes, int nblocks, int nrows, int k64, int8_t* dst) {
  int codes = 0;
  for (int r = 0; r < kRows; ++r) {
    int8_t* d = dst + (size_t)r * k64;
    if (r >= nrows) {
      std::memset(d, 0, (size_t)k64);
      continue;
    }
    const uint8_t* row = w + (size_t)r * row_bytes;
    switch (f) {
      case Codes::Ternary2:
        decode_t2(row, nblocks, d);
        codes = nblocks * 128;
        break;
      case Codes::Ternary1_6:
        decode_t16(row, nblocks, d);
        codes = nblocks * 160;
        break;
      case Codes::Binary1:
        decode_b1(row, nblocks, d);
        codes = nblocks * 256;
        break;
      case Codes::Q6:
        decode_q6(row, nblocks, d);
        codes = nblocks * 256;
        break;
      case Codes::Int8:
        std::memcpy(d, row, (size_t)nblocks * 64);
        codes = nblocks * 64;
        break;
    }
    if (codes < k64) std::memset(d + codes, 0, (size_t)(k64 - codes));
  }
}

void tile_gemm(const int8_t* wdec, int k64, const int8_t* xv, int npad, int32_t* out) {
  // Tiles 0-3: the 2 x 2 blocks of 16 x 16 int32 sums; 4, 5: weight rows 0-15 and 16-31 (16 rows of
  // 64 codes); 6, 7: tokens t0..t0+15 and t0+16..t0+31 (16 groups of 4 codes, 64 bytes a row).
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
  const size_t xs = (size_t)npad * 4, os = (size_t)npad * 4;
  const int8_t* w1 = wdec + (size_t)16 * k64;
  for (int t0 = 0; t0 < npad; t0 += kTokens) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int k = 0; k < k64; k += 64) {
      const int8_t* b = xv + (size_t)(k / 4) * xs + (size_t)t0 * 4;
      _tile_loadd(4, wdec + k, k64);
      _tile_loadd(6, b, xs);
      _tile_loadd(7, b + 64, xs);
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
      _tile_loadd(5, w1 + k, k64);
      _tile_dpbssd(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
    }
    _tile_stored(0, out + t0, os);
    _tile_stored(1, out + t0 + 16, os);
    _tile_stored(2, out + (size_t)16 * npad + t0, os);
    _tile_stored(3, out + (size_t)16 * npad + t0 + 16, os);
  }
  _tile_release();
}

}  // namespace onebit::infer::amx
