#include "onebit/formats/gguf/ternary_blocks.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/formats/gguf/half.h"

namespace onebit::formats::gguf {

namespace {

constexpr int kBlock = 256;

void check_sizes(size_t n, size_t bytes, size_t block_bytes, const char* what) {
  OB_CHECK(n % kBlock == 0, what, ": ", n, " values is not a multiple of 256");
  OB_CHECK(bytes == n / kBlock * block_bytes, what, ": ", bytes, " bytes for ", n, " values");
}

// Codes 0,1,2 (= w + 1) of one block, and its scale d, from floats as quantize_row_tq*_ref does.
float block_codes(const float* x, uint8_t* q) {
  float amax = 0.0f;
  for (int j = 0; j < kBlock; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float id = amax != 0.0f ? 1.0f / amax : 0.0f;
  for (int j = 0; j < kBlock; ++j) q[j] = static_cast<uint8_t>(std::lroundf(x[j] * id) + 1);
  return amax;
}

void pack_tq2(const uint8_t* q, float d, uint8_t* out) {
  for (int c = 0; c < 2; ++c)
    for (int m = 0; m < 32; ++m) {
      uint8_t b = 0;
      for (int n = 0; n < 4; ++n) b |= static_cast<uint8_t>((q[128 * c + 32 * n + m] & 3) << (2 * n));
      out[32 * c + m] = b;
    }
  const uint16_t h = f32_to_f16(d);
  std::memcpy(out + 64, &h, 2);
}

// Five (or four, then shifted up one trit) codes, most significant first, as one byte.
uint8_t pack_trits(const uint8_t* q, int count, int stride) {
  unsigned v = 0;
  for (int n = 0; n < count; ++n) v = v * 3 + q[n * stride];
  if (count == 4) v *= 3;
  return static_cast<uint8_t>((v * 256 + 242) / 243);
}

void pack_tq1(const uint8_t* q, float d, uint8_t* out) {
  for (int m = 0; m < 32; ++m) out[m] = pack_trits(q + m, 5, 32);             // weights 0..159
  for (int m = 0; m < 16; ++m) out[32 + m] = pack_trits(q + 160 + m, 5, 16);  // weights 160..239
  for (int j = 0; j < 4; ++j) out[48 + j] = pack_trits(q + 240 + j, 4, 4);    // weights 240..255
  const uint16_t h = f32_to_f16(d);
  std::memcpy(out + 52, &h, 2);
}

float block_d(const uint8_t* block, size_t d_offset) {
  uint16_t h;
  std::memcpy(&h, block + d_offset, 2);
  return f16_to_f32(h);
}

int trit(uint8_t byte, int n) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t q = static_cast<uint8_t>(byte * kPow3[n]);
  return (static_cast<uint16_t>(q) * 3) >> 8;
}

// Codes 0,1,2 and d from {-1,0,1}; error on anything else.
float codes_from_ternary(const int8_t* c, uint8_t* q) {
  bool any = false;
  for (int j = 0; j < kBlock; ++j) {
    OB_CHECK(c[j] >= -1 && c[j] <= 1, "ternary code ", static_cast<int>(c[j]), " is not -1, 0 or 1");
    q[j] = static_cast<uint8_t>(c[j] + 1);
    any = any || c[j] != 0;
  }
  return any ? 1.0f : 0.0f;
}

}  // namespace

void quantize_tq2_0(std::span<const float> x, std::span<uint8_t> out) {
  check_sizes(x.size(), out.size(), kTQ2BlockBytes, "TQ2_0 quantize");
  uint8_t q[kBlock];
  for (size_t b = 0; b < x.size() / kBlock; ++b) {
    const float d = block_codes(x.data() + b * kBlock, q);
    pack_tq2(q, d, out.data() + b * kTQ2BlockBytes);
  }
}

void quantize_tq1_0(std::span<const float> x, std::span<uint8_t> out) {
  check_sizes(x.size(), out.size(), kTQ1BlockBytes, "TQ1_0 quantize");
  uint8_t q[kBlock];
  for (size_t b = 0; b < x.size() / kBlock; ++b) {
    const float d = block_codes(x.data() + b * kBlock, q);
    pack_tq1(q, d, out.data() + b * kTQ1BlockBytes);
  }
}

void encode_codes_tq2_0(std::span<const int8_t> codes, std::span<uint8_t> out) {
  check_sizes(codes.size(), out.size(), kTQ2BlockBytes, "TQ2_0 encode");
  uint8_t q[kBlock];
  for (size_t b = 0; b < codes.size() / kBlock; ++b)
    pack_tq2(q, codes_from_ternary(codes.data() + b * kBlock, q), out.data() + b * kTQ2BlockBytes);
}

void encode_codes_tq1_0(std::span<const int8_t> codes, std::span<uint8_t> out) {
  check_sizes(codes.size(), out.size(), kTQ1BlockBytes, "TQ1_0 encode");
  uint8_t q[kBlock];
  for (size_t b = 0; b < codes.size() / kBlock; ++b)
    pack_tq1(q, codes_from_ternary(codes.data() + b * kBlock, q), out.data() + b * kTQ1BlockBytes);
}

void dequantize_tq2_0(std::span<const uint8_t> in, std::span<float> y) {
  check_sizes(y.size(), in.size(), kTQ2BlockBytes, "TQ2_0 dequantize");
  for (size_t b = 0; b < y.size() / kBlock; ++b) {
    const uint8_t* blk = in.data() + b * kTQ2BlockBytes;
    const float d = block_d(blk, 64);
    float* out = y.data() + b * kBlock;
    for (int c = 0; c < 2; ++c)
      for (int n = 0; n < 4; ++n)
        for (int m = 0; m < 32; ++m)
          out[128 * c + 32 * n + m] = static_cast<float>(((blk[32 * c + m] >> (2 * n)) & 3) - 1) * d;
  }
}

void dequantize_tq1_0(std::span<const uint8_t> in, std::span<float> y) {
  check_sizes(y.size(), in.size(), kTQ1BlockBytes, "TQ1_0 dequantize");
  for (size_t b = 0; b < y.size() / kBlock; ++b) {
    const uint8_t* blk = in.data() + b * kTQ1BlockBytes;
    const float d = block_d(blk, 52);
    float* out = y.data() + b * kBlock;
    for (int n = 0; n < 5; ++n)
      for (int m = 0; m < 32; ++m) out[32 * n + m] = static_cast<float>(trit(blk[m], n) - 1) * d;
    for (int n = 0; n < 5; ++n)
      for (int m = 0; m < 16; ++m) out[160 + 16 * n + m] = static_cast<float>(trit(blk[32 + m], n) - 1) * d;
    for (int n = 0; n < 4; ++n)
      for (int j = 0; j < 4; ++j) out[240 + 4 * n + j] = static_cast<float>(trit(blk[48 + j], n) - 1) * d;
  }
}

}  // namespace onebit::formats::gguf
