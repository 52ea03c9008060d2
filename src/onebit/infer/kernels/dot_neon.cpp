// AArch64 NEON kernels (compiled with -march=armv8.2-a+dotprod for this file only; run only where
// getauxval(AT_HWCAP) has HWCAP_ASIMDDP, kernels/dot.cpp). Quantized rows: every stored code is a
// small non-negative int8 (code + 1 <= 2, a bit, q6's code + 32 <= 63) or the signed int8 code itself,
// so vdotq_s32 multiplies it with the signed int8 activations and sums groups of four products
// straight into int32 lanes: no int16 stage to widen (unlike AVX2's maddubs) and no sign trick.
#include <arm_neon.h>

#include <math.h>

#include "onebit/infer/kernels/dot.h"

namespace onebit::infer {

namespace {

// No std:: inline templates in this file: a copy compiled for armv8.2-a could be the one the linker
// keeps for the whole binary (the same rule as dot_avx2.cpp).
inline float fmax1(float a, float b) { return a > b ? a : b; }

constexpr int kMaxRows = 8;  // activation rows per integer call (32 vector registers)

// Accumulators per activation row: two for a single row, so its dot products do not form one long
// dependency chain; one when several rows already interleave (more would spill to the stack).
constexpr int accs_per_row(int nx) { return nx == 1 ? 2 : 1; }

inline int8x16_t as_s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

// Unsigned digit i of a 32-byte block, for each format, as the two 16-lane halves (codes 32i..32i+15
// and 32i+16..32i+31).
struct T2 {
  static constexpr int kCodes = 128, kDigits = 4;
  uint8x16_t lo, hi;
  explicit T2(const uint8_t* p) : lo(vld1q_u8(p)), hi(vld1q_u8(p + 16)) {}
  void digit(int i, int8x16_t& d0, int8x16_t& d1) const {
    const int8x16_t shift = vdupq_n_s8((int8_t)(-2 * i));  // vshl by a negative count shifts right
    const uint8x16_t m3 = vdupq_n_u8(3);
    d0 = as_s8(vandq_u8(vshlq_u8(lo, shift), m3));
    d1 = as_s8(vandq_u8(vshlq_u8(hi, shift), m3));
  }
};
struct T16 {
  static constexpr int kCodes = 160, kDigits = 5;
  uint8x16_t lo, hi;
  explicit T16(const uint8_t* p) : lo(vld1q_u8(p)), hi(vld1q_u8(p + 16)) {}
  // digit i = top bits of (q * 3^i mod 256) * 3: 1 when t >= 86, 2 when t >= 171. Called for i = 0, 1, ...
  // in order (each call multiplies t by 3 once more).
  static int8x16_t top(uint8x16_t t) {
    const uint8x16_t ge1 = vcgeq_u8(t, vdupq_n_u8(86)), ge2 = vcgeq_u8(t, vdupq_n_u8(171));
    return vnegq_s8(vaddq_s8(as_s8(ge1), as_s8(ge2)));  // the masks are -1 each
  }
  void digit(int i, int8x16_t& d0, int8x16_t& d1) {
    if (i) {
      lo = vmulq_u8(lo, vdupq_n_u8(3));
      hi = vmulq_u8(hi, vdupq_n_u8(3));
    }
    d0 = top(lo);
    d1 = top(hi);
  }
};
struct B1 {
  static constexpr int kCodes = 256, kDigits = 8;
  uint8x16_t lo, hi;
  explicit B1(const uint8_t* p) : lo(vld1q_u8(p)), hi(vld1q_u8(p + 16)) {}
  void digit(int i, int8x16_t& d0, int8x16_t& d1) const {
    const int8x16_t shift = vdupq_n_s8((int8_t)-i);
    const uint8x16_t m1 = vdupq_n_u8(1);
    d0 = as_s8(vandq_u8(vshlq_u8(lo, shift), m1));
    d1 = as_s8(vandq_u8(vshlq_u8(hi, shift), m1));
  }
};

// raw[j] = sum of stored digit * x over nblocks.
template <typename Block, int NX>
void dot_digits(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int32_t* raw) {
  constexpr int A = accs_per_row(NX);
  int32x4_t acc[NX][A];
  for (int j = 0; j < NX; ++j)
    for (int a = 0; a < A; ++a) acc[j][a] = vdupq_n_s32(0);
  for (int b = 0; b < nblocks; ++b) {
    Block blk(w + (size_t)b * 32);
    const int8_t* xb = x + (size_t)b * Block::kCodes;
    for (int i = 0; i < Block::kDigits; ++i) {
      int8x16_t d0, d1;
      blk.digit(i, d0, d1);
      for (int j = 0; j < NX; ++j) {
        const int8_t* xj = xb + j * xs + 32 * i;
        acc[j][0] = vdotq_s32(acc[j][0], d0, vld1q_s8(xj));
        acc[j][A - 1] = vdotq_s32(acc[j][A - 1], d1, vld1q_s8(xj + 16));
      }
    }
  }
  for (int j = 0; j < NX; ++j) raw[j] = vaddvq_s32(A == 2 ? vaddq_s32(acc[j][0], acc[j][A - 1]) : acc[j][0]);
}

using RawFn = void (*)(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int32_t* raw);

// The instantiation for nx rows (1 <= nx <= kMaxRows).
template <template <int> class Rows>
RawFn rows_fn(int nx) {
  static constexpr RawFn kFns[kMaxRows] = {Rows<1>::run, Rows<2>::run, Rows<3>::run, Rows<4>::run,
                                           Rows<5>::run, Rows<6>::run, Rows<7>::run, Rows<8>::run};
  return kFns[nx - 1];
}

template <typename Block>
struct Digits {
  template <int NX>
  struct Rows {
    static void run(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int32_t* raw) {
      dot_digits<Block, NX>(w, nblocks, x, xs, raw);
    }
  };
};

void dot_ternary2(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, const int32_t* xsum, int nx,
                  int32_t* out) {
  rows_fn<Digits<T2>::Rows>(nx)(w, nblocks, x, xs, out);
  for (int j = 0; j < nx; ++j) out[j] -= xsum[j];  // stored code + 1
}

void dot_ternary1_6(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, const int32_t* xsum, int nx,
                    int32_t* out) {
  rows_fn<Digits<T16>::Rows>(nx)(w, nblocks, x, xs, out);
  for (int j = 0; j < nx; ++j) out[j] -= xsum[j];
}

void dot_binary1(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, const int32_t* xsum, int nx,
                 int32_t* out) {
  rows_fn<Digits<B1>::Rows>(nx)(w, nblocks, x, xs, out);
  for (int j = 0; j < nx; ++j) out[j] = 2 * out[j] - xsum[j];  // sign = 2 * bit - 1
}

// Four weight rows against one token (decode): each activation load serves four rows' digits.
void ternary2_4rows(const uint8_t* w, size_t row_bytes, int nblocks, const int8_t* x, int32_t xsum, int32_t* out) {
  int32x4_t acc[4];  // one per row: four rows interleave
  for (int r = 0; r < 4; ++r) acc[r] = vdupq_n_s32(0);
  for (int b = 0; b < nblocks; ++b) {
    T2 rows[4] = {T2(w + (size_t)b * 32), T2(w + row_bytes + (size_t)b * 32), T2(w + 2 * row_bytes + (size_t)b * 32),
                  T2(w + 3 * row_bytes + (size_t)b * 32)};
    const int8_t* xb = x + (size_t)b * 128;
    for (int i = 0; i < 4; ++i) {
      const int8x16_t x0 = vld1q_s8(xb + 32 * i), x1 = vld1q_s8(xb + 32 * i + 16);
      for (int r = 0; r < 4; ++r) {
        int8x16_t d0, d1;
        rows[r].digit(i, d0, d1);
        acc[r] = vdotq_s32(vdotq_s32(acc[r], d0, x0), d1, x1);
      }
    }
  }
  for (int r = 0; r < 4; ++r) out[r] = vaddvq_s32(acc[r]) - xsum;
}

// Q6: 16 consecutive codes (unsigned, code + 32) from the block's two nibble halves and its top-bit
// bytes; piece p < 16 covers codes 16p..16p+15.
inline int8x16_t q6_piece(const uint8_t* blk, int p) {
  const int lo_off = 16 * (p % 8), hi_off = 16 * (p % 4);  // codes 16p.. sit at byte 16p mod 128 / mod 64
  const uint8x16_t lo = vld1q_u8(blk + lo_off), hi = vld1q_u8(blk + 128 + hi_off);
  const uint8x16_t low = p < 8 ? vandq_u8(lo, vdupq_n_u8(15)) : vshrq_n_u8(lo, 4);
  const uint8x16_t top = vandq_u8(vshlq_u8(hi, vdupq_n_s8((int8_t)(-2 * (p / 4)))), vdupq_n_u8(3));
  return as_s8(vorrq_u8(low, vshlq_n_u8(top, 4)));
}

template <int NX>
struct Q6Rows {
  static void run(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int32_t* raw) {
    constexpr int A = accs_per_row(NX);
    int32x4_t acc[NX][A];
    for (int j = 0; j < NX; ++j)
      for (int a = 0; a < A; ++a) acc[j][a] = vdupq_n_s32(0);
    for (int b = 0; b < nblocks; ++b) {
      const uint8_t* blk = w + (size_t)b * 192;
      const int8_t* xb = x + (size_t)b * 256;
      for (int p = 0; p < 16; ++p) {
        const int8x16_t u = q6_piece(blk, p);
        for (int j = 0; j < NX; ++j) acc[j][p % A] = vdotq_s32(acc[j][p % A], u, vld1q_s8(xb + j * xs + 16 * p));
      }
    }
    for (int j = 0; j < NX; ++j) raw[j] = vaddvq_s32(A == 2 ? vaddq_s32(acc[j][0], acc[j][A - 1]) : acc[j][0]);
  }
};

void dot_q6(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, const int32_t* xsum, int nx, int32_t* out) {
  rows_fn<Q6Rows>(nx)(w, nblocks, x, xs, out);
  for (int j = 0; j < nx; ++j) out[j] -= 32 * xsum[j];  // stored code + 32
}

// Signed codes times signed activations: vdotq_s32 as it is.
template <int NX>
struct Int8Rows {
  static void run(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, int32_t* out) {
    const auto* c = reinterpret_cast<const int8_t*>(w);
    constexpr int A = accs_per_row(NX);
    int32x4_t acc[NX][A];
    for (int j = 0; j < NX; ++j)
      for (int a = 0; a < A; ++a) acc[j][a] = vdupq_n_s32(0);
    for (int k = 0; k < nblocks * 64; k += 32) {
      const int8x16_t w0 = vld1q_s8(c + k), w1 = vld1q_s8(c + k + 16);
      for (int j = 0; j < NX; ++j) {
        acc[j][0] = vdotq_s32(acc[j][0], w0, vld1q_s8(x + j * xs + k));
        acc[j][A - 1] = vdotq_s32(acc[j][A - 1], w1, vld1q_s8(x + j * xs + k + 16));
      }
    }
    for (int j = 0; j < NX; ++j) out[j] = vaddvq_s32(A == 2 ? vaddq_s32(acc[j][0], acc[j][A - 1]) : acc[j][0]);
  }
};

void dot_int8(const uint8_t* w, int nblocks, const int8_t* x, size_t xs, const int32_t*, int nx, int32_t* out) {
  rows_fn<Int8Rows>(nx)(w, nblocks, x, xs, out);
}

inline float32x4_t load_f32x4(const float* p) { return vld1q_f32(p); }
inline float f32_scalar(float f) { return f; }
inline float32x4_t load_bf16x4(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
inline float bf16_scalar(uint16_t b) {
  const uint32_t u = (uint32_t)b << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
// f16 -> f32 with the base AArch64 FCVTL (exact for every value, as half.h's integer decode).
inline float32x4_t load_f16x4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
inline float f16_scalar(uint16_t h) {
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}
inline float32x4_t load_i8x4(const int8_t* p) {
  int32_t four;
  __builtin_memcpy(&four, p, 4);  // exactly 4 bytes: a row's last values may end the buffer
  const int16x8_t h = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(four)));
  return vcvtq_f32_s32(vmovl_s16(vget_low_s16(h)));
}
inline float i8_scalar(int8_t x) { return (float)x; }

// f32 / bf16 rows: 8 values per step in two accumulators per activation row.
template <typename W, float32x4_t (*Load4)(const W*), float (*Load1)(W), int NX>
void dot_float_rows(const W* w, int n, const float* x, size_t xs, float* out) {
  float32x4_t acc[NX][2];
  for (int j = 0; j < NX; ++j) acc[j][0] = acc[j][1] = vdupq_n_f32(0.0f);
  int k = 0;
  for (; k + 8 <= n; k += 8) {
    const float32x4_t w0 = Load4(w + k), w1 = Load4(w + k + 4);
    for (int j = 0; j < NX; ++j) {
      acc[j][0] = vfmaq_f32(acc[j][0], w0, vld1q_f32(x + j * xs + k));
      acc[j][1] = vfmaq_f32(acc[j][1], w1, vld1q_f32(x + j * xs + k + 4));
    }
  }
  for (; k + 4 <= n; k += 4) {
    const float32x4_t w0 = Load4(w + k);
    for (int j = 0; j < NX; ++j) acc[j][0] = vfmaq_f32(acc[j][0], w0, vld1q_f32(x + j * xs + k));
  }
  for (int j = 0; j < NX; ++j) {
    float s = vaddvq_f32(vaddq_f32(acc[j][0], acc[j][1]));
    for (int t = k; t < n; ++t) s += Load1(w[t]) * x[j * xs + t];
    out[j] = s;
  }
}

template <typename W, float32x4_t (*Load4)(const W*), float (*Load1)(W)>
void dot_float(const W* w, int n, const float* x, size_t xs, int nx, float* out) {
  switch (nx) {
    case 1:
      return dot_float_rows<W, Load4, Load1, 1>(w, n, x, xs, out);
    case 2:
      return dot_float_rows<W, Load4, Load1, 2>(w, n, x, xs, out);
    case 3:
      return dot_float_rows<W, Load4, Load1, 3>(w, n, x, xs, out);
    default:
      return dot_float_rows<W, Load4, Load1, 4>(w, n, x, xs, out);
  }
}

// exp of 4 floats: the Cody-Waite reduction and degree-6 polynomial of dot_avx2.cpp's exp8 (~2 ulp),
// clamped to [-87.3, 88.3].
inline float32x4_t exp4(float32x4_t x) {
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.3f));
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  p = vaddq_f32(vfmaq_f32(r, vmulq_f32(p, r), r), vdupq_n_f32(1.0f));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);  // n is integral
  return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

// Scores of 4 keys at once (pairwise adds reduce all four together), softmax with exp4, then the
// weighted sum of values. ks / vs: per-row scales of an int8 cache (nullptr: 1), folded into each
// row's score and weight.
template <typename KV, float32x4_t (*Load4)(const KV*), float (*Load1)(KV)>
void attend_rows(const float* q, const KV* k, const float* ks, const KV* v, const float* vs, int n, int hd,
                 float scale, float* scores, float* out) {
  const int hd4 = hd / 4 * 4;
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const KV* k0 = k + (size_t)j * hd;
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < hd4; i += 4) {
      const float32x4_t qv = vld1q_f32(q + i);
      a0 = vfmaq_f32(a0, qv, Load4(k0 + i));
      a1 = vfmaq_f32(a1, qv, Load4(k0 + hd + i));
      a2 = vfmaq_f32(a2, qv, Load4(k0 + 2 * hd + i));
      a3 = vfmaq_f32(a3, qv, Load4(k0 + 3 * hd + i));
    }
    float32x4_t s = vpaddq_f32(vpaddq_f32(a0, a1), vpaddq_f32(a2, a3));  // the 4 dots
    if (hd4 < hd) {
      float t[4];
      vst1q_f32(t, s);
      for (int u = 0; u < 4; ++u)
        for (int i = hd4; i < hd; ++i) t[u] += q[i] * Load1(k0[(size_t)u * hd + i]);
      s = vld1q_f32(t);
    }
    s = vmulq_f32(s, vdupq_n_f32(scale));
    if (ks) s = vmulq_f32(s, vld1q_f32(ks + j));
    vst1q_f32(scores + j, s);
  }
  for (; j < n; ++j) {
    const KV* kj = k + (size_t)j * hd;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int i = 0; i < hd4; i += 4) acc = vfmaq_f32(acc, vld1q_f32(q + i), Load4(kj + i));
    float d = vaddvq_f32(acc);
    for (int i = hd4; i < hd; ++i) d += q[i] * Load1(kj[i]);
    scores[j] = d * scale * (ks ? ks[j] : 1.0f);
  }
  float mx = -INFINITY;
  for (int t = 0; t < n; ++t) mx = fmax1(mx, scores[t]);
  const float32x4_t mxv = vdupq_n_f32(mx);
  float32x4_t sumv = vdupq_n_f32(0.0f);
  int t = 0;
  for (; t + 4 <= n; t += 4) {
    const float32x4_t e = exp4(vsubq_f32(vld1q_f32(scores + t), mxv));
    vst1q_f32(scores + t, e);
    sumv = vaddq_f32(sumv, e);
  }
  float sum = vaddvq_f32(sumv);
  for (; t < n; ++t) sum += scores[t] = expf(scores[t] - mx);
  const float inv = 1.0f / sum;
  if (hd % 64 == 0) {
    // 64 output values at a time stay in 16 registers over all n positions (no load/store of out
    // per position), as in the AVX2 kernel.
    for (int i0 = 0; i0 < hd; i0 += 64) {
      float32x4_t acc[16];
      for (int u = 0; u < 16; ++u) acc[u] = vdupq_n_f32(0.0f);
      for (int jj = 0; jj < n; ++jj) {
        const KV* vj = v + (size_t)jj * hd + i0;
        const float32x4_t pv = vdupq_n_f32(vs ? scores[jj] * vs[jj] : scores[jj]);
        for (int u = 0; u < 16; ++u) acc[u] = vfmaq_f32(acc[u], pv, Load4(vj + 4 * u));
      }
      for (int u = 0; u < 16; ++u) vst1q_f32(out + i0 + 4 * u, vmulq_f32(acc[u], vdupq_n_f32(inv)));
    }
    return;
  }
  for (int i = 0; i < hd; ++i) out[i] = 0;
  for (int jj = 0; jj < n; ++jj) {
    const KV* vj = v + (size_t)jj * hd;
    const float p = scores[jj] * inv * (vs ? vs[jj] : 1.0f);
    const float32x4_t pv = vdupq_n_f32(p);
    for (int i = 0; i < hd4; i += 4) vst1q_f32(out + i, vfmaq_f32(vld1q_f32(out + i), pv, Load4(vj + i)));
    for (int i = hd4; i < hd; ++i) out[i] += p * Load1(vj[i]);
  }
}

template <typename KV, float32x4_t (*Load4)(const KV*), float (*Load1)(KV)>
void attend(const float* q, const KV* k, const KV* v, int n, int hd, float scale, float* scores, float* out) {
  attend_rows<KV, Load4, Load1>(q, k, nullptr, v, nullptr, n, hd, scale, scores, out);
}

}  // namespace

const DotKernels& neon_kernels() {
  static const DotKernels k{KernelPath::Neon,
                            kMaxRows,
                            dot_ternary2,
                            dot_ternary1_6,
                            dot_binary1,
                            dot_int8,
                            dot_q6,
                            ternary2_4rows,
                            dot_float<float, load_f32x4, f32_scalar>,
                            dot_float<uint16_t, load_bf16x4, bf16_scalar>,
                            attend<uint16_t, load_f16x4, f16_scalar>,
                            attend<float, load_f32x4, f32_scalar>,
                            attend_rows<int8_t, load_i8x4, i8_scalar>};
  return k;
}

}  // namespace onebit::infer
