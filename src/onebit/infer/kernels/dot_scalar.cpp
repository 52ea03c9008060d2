// The scalar reference kernels: decode each code the obvious way and accumulate. Every SIMD path is
// tested against these.
#include <algorithm>
#include <cmath>

#include "onebit/infer/kernels/dot.h"
#include "onebit/infer/kernels/half.h"

namespace onebit::infer {

namespace {

// code(w, k) for k inside one 32-byte block of each format (offset form: the value stored).
inline int t2_digit(const uint8_t* blk, int k) { return (blk[k % 32] >> (2 * (k / 32))) & 3; }
inline int t16_digit(const uint8_t* blk, int k) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t t = (uint8_t)(blk[k % 32] * kPow3[k / 32]);
  return (t * 3) >> 8;
}
inline int b1_bit(const uint8_t* blk, int k) { return (blk[k % 32] >> (k / 32)) & 1; }

template <int (*Digit)(const uint8_t*, int), int kCodes>
void dot_offset(const uint8_t* w, int nblocks, const int8_t* x, size_t x_stride, int nx, int32_t* raw) {
  for (int j = 0; j < nx; ++j) raw[j] = 0;
  for (int b = 0; b < nblocks; ++b) {
    const uint8_t* blk = w + (size_t)b * 32;
    for (int k = 0; k < kCodes; ++k) {
      const int d = Digit(blk, k);
      for (int j = 0; j < nx; ++j) raw[j] += d * x[j * x_stride + (size_t)b * kCodes + k];
    }
  }
}

void dot_ternary2(const uint8_t* w, int nblocks, const int8_t* x, size_t x_stride, const int32_t* xsum, int nx,
                  int32_t* out) {
  dot_offset<t2_digit, 128>(w, nblocks, x, x_stride, nx, out);
  for (int j = 0; j < nx; ++j) out[j] -= xsum[j];  // stored code + 1
}

void dot_ternary1_6(const uint8_t* w, int nblocks, const int8_t* x, size_t x_stride, const int32_t* xsum, int nx,
                    int32_t* out) {
  dot_offset<t16_digit, 160>(w, nblocks, x, x_stride, nx, out);
  for (int j = 0; j < nx; ++j) out[j] -= xsum[j];
}

void dot_binary1(const uint8_t* w, int nblocks, const int8_t* x, size_t x_stride, const int32_t* xsum, int nx,
                 int32_t* out) {
  dot_offset<b1_bit, 256>(w, nblocks, x, x_stride, nx, out);
  for (int j = 0; j < nx; ++j) out[j] = 2 * out[j] - xsum[j];  // sign = 2 * bit - 1
}

void dot_q6(const uint8_t* w, int nblocks, const int8_t* x, size_t x_stride, const int32_t* xsum, int nx,
            int32_t* out) {
  for (int j = 0; j < nx; ++j) out[j] = 0;
  for (int b = 0; b < nblocks; ++b) {
    const uint8_t* blk = w + (size_t)b * 192;
    for (int k = 0; k < 256; ++k) {
      const int u = ((blk[k % 128] >> (k < 128 ? 0 : 4)) & 15) | ((blk[128 + k % 64] >> (2 * (k / 64))) & 3) << 4;
      for (int j = 0; j < nx; ++j) out[j] += u * x[j * x_stride + (size_t)b * 256 + k];
    }
  }
  for (int j = 0; j < nx; ++j) out[j] -= 32 * xsum[j];  // stored code + 32
}

void dot_int8(const uint8_t* w, int nblocks, const int8_t* x, size_t x_stride, const int32_t*, int nx,
              int32_t* out) {
  const auto* c = reinterpret_cast<const int8_t*>(w);
  for (int j = 0; j < nx; ++j) {
    int32_t acc = 0;
    for (int k = 0; k < nblocks * 64; ++k) acc += c[k] * x[j * x_stride + k];
    out[j] = acc;
  }
}

void dot_f32(const float* w, int n, const float* x, size_t x_stride, int nx, float* out) {
  for (int j = 0; j < nx; ++j) {
    float acc = 0;
    for (int k = 0; k < n; ++k) acc += w[k] * x[j * x_stride + k];
    out[j] = acc;
  }
}

void dot_bf16(const uint16_t* w, int n, const float* x, size_t x_stride, int nx, float* out) {
  for (int j = 0; j < nx; ++j) {
    float acc = 0;
    for (int k = 0; k < n; ++k) {
      const uint32_t u = (uint32_t)w[k] << 16;
      float wf;
      std::memcpy(&wf, &u, 4);
      acc += wf * x[j * x_stride + k];
    }
    out[j] = acc;
  }
}

// ks / vs: per-row scales of an int8 cache (nullptr: 1).
template <typename KV, float (*Load)(KV)>
void attend_rows(const float* q, const KV* k, const float* ks, const KV* v, const float* vs, int n, int hd,
                 float scale, float* scores, float* out) {
  float mx = -INFINITY;
  for (int j = 0; j < n; ++j) {
    float d = 0;
    for (int i = 0; i < hd; ++i) d += q[i] * Load(k[(size_t)j * hd + i]);
    scores[j] = d * scale * (ks ? ks[j] : 1.0f);
    mx = std::max(mx, scores[j]);
  }
  float sum = 0;
  for (int j = 0; j < n; ++j) sum += scores[j] = std::exp(scores[j] - mx);
  for (int i = 0; i < hd; ++i) out[i] = 0;
  for (int j = 0; j < n; ++j) {
    const float p = scores[j] / sum * (vs ? vs[j] : 1.0f);
    for (int i = 0; i < hd; ++i) out[i] += p * Load(v[(size_t)j * hd + i]);
  }
}

template <typename KV, float (*Load)(KV)>
void attend(const float* q, const KV* k, const KV* v, int n, int hd, float scale, float* scores, float* out) {
  attend_rows<KV, Load>(q, k, nullptr, v, nullptr, n, hd, scale, scores, out);
}

inline float load_i8(int8_t x) { return (float)x; }

inline float load_f32(float x) { return x; }

}  // namespace

const DotKernels& scalar_kernels() {
  static const DotKernels k{KernelPath::Scalar, 8, dot_ternary2, dot_ternary1_6, dot_binary1, dot_int8, dot_q6, nullptr, dot_f32,
                            dot_bf16, attend<uint16_t, f16_to_f32>, attend<float, load_f32>,
                            attend_rows<int8_t, load_i8>};
  return k;
}

}  // namespace onebit::infer
