#include "onebit/infer/packed_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "onebit/core/error.h"

namespace onebit::infer {

const char* to_string(PackedFormat f) {
  switch (f) {
    case PackedFormat::Ternary2:
      return "ternary-2bit";
    case PackedFormat::Ternary1_6:
      return "ternary-1.6bit";
    case PackedFormat::Binary1:
      return "binary-1bit";
    case PackedFormat::Int8:
      return "int8";
    case PackedFormat::Q6:
      return "q6";
    case PackedFormat::F32:
      return "f32";
    case PackedFormat::BF16:
      return "bf16";
  }
  return "?";
}

int block_codes(PackedFormat f) {
  switch (f) {
    case PackedFormat::Ternary2:
      return 128;
    case PackedFormat::Ternary1_6:
      return 160;
    case PackedFormat::Binary1:
      return 256;
    case PackedFormat::Int8:
      return 64;
    case PackedFormat::Q6:
      return 256;
    default:
      return 0;
  }
}

int block_bytes(PackedFormat f) {
  if (f == PackedFormat::Int8) return 64;
  if (f == PackedFormat::Q6) return 192;
  return block_codes(f) ? 32 : 0;
}

AlignedBytes::AlignedBytes(size_t n) : n_(n) {
  const size_t rounded = (n + 63) / 64 * 64;
  p_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, rounded ? rounded : 64)));
  if (!p_) fail("out of memory allocating ", n, " bytes of packed weights");
  std::memset(p_.get(), 0, rounded ? rounded : 64);
}

namespace {

PackedMatrix make_quantized(PackedFormat f, int rows, int cols, float scale) {
  OB_CHECK(rows > 0 && cols > 0, "pack: empty matrix [", rows, ", ", cols, "]");
  PackedMatrix m;
  m.format = f;
  m.rows = rows;
  m.cols = cols;
  const int bc = block_codes(f);
  m.padded_cols = (cols + bc - 1) / bc * bc;
  m.row_bytes = (size_t)(m.padded_cols / bc) * block_bytes(f);
  m.scale = scale;
  m.data = AlignedBytes(m.row_bytes * rows);
  return m;
}

void check_size(size_t got, int rows, int cols, const char* what) {
  OB_CHECK(got == (size_t)rows * cols, what, ": ", got, " values for a [", rows, ", ", cols, "] matrix");
}

}  // namespace

PackedMatrix pack_ternary(std::span<const int8_t> codes, int rows, int cols, float scale, PackedFormat format) {
  OB_CHECK(format == PackedFormat::Ternary2 || format == PackedFormat::Ternary1_6,
           "pack_ternary: not a ternary format: ", to_string(format));
  check_size(codes.size(), rows, cols, "pack_ternary");
  PackedMatrix m = make_quantized(format, rows, cols, scale);
  const int bc = block_codes(format);
  std::vector<int> padded(m.padded_cols);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < m.padded_cols; ++c) {
      const int v = c < cols ? codes[(size_t)r * cols + c] : 0;
      OB_CHECK(v >= -1 && v <= 1, "pack_ternary: code ", v, " at (", r, ", ", c, ") is not -1, 0 or +1");
      padded[c] = v + 1;
    }
    uint8_t* out = m.data.data() + (size_t)r * m.row_bytes;
    for (int b = 0; b < m.padded_cols / bc; ++b, out += 32) {
      const int* blk = padded.data() + (size_t)b * bc;
      for (int j = 0; j < 32; ++j) {
        if (format == PackedFormat::Ternary2) {
          out[j] = (uint8_t)(blk[j] | blk[j + 32] << 2 | blk[j + 64] << 4 | blk[j + 96] << 6);
        } else {
          int v = 0;
          for (int i = 0; i < 5; ++i) v = v * 3 + blk[j + 32 * i];
          out[j] = (uint8_t)((v * 256 + 242) / 243);
        }
      }
    }
  }
  return m;
}

PackedMatrix pack_binary(std::span<const int8_t> signs, int rows, int cols, float scale) {
  check_size(signs.size(), rows, cols, "pack_binary");
  PackedMatrix m = make_quantized(PackedFormat::Binary1, rows, cols, scale);
  for (int r = 0; r < rows; ++r) {
    uint8_t* out = m.data.data() + (size_t)r * m.row_bytes;
    for (int c = 0; c < cols; ++c) {
      const int v = signs[(size_t)r * cols + c];
      OB_CHECK(v == 1 || v == -1, "pack_binary: sign ", v, " at (", r, ", ", c, ") is not +1 or -1");
      // Padding bits stay 0 (= -1) and meet zero activations.
      if (v > 0) out[(c / 256) * 32 + c % 32] |= (uint8_t)(1u << ((c % 256) / 32));
    }
  }
  return m;
}

PackedMatrix pack_int8(std::span<const int8_t> codes, int rows, int cols, float scale) {
  check_size(codes.size(), rows, cols, "pack_int8");
  PackedMatrix m = make_quantized(PackedFormat::Int8, rows, cols, scale);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const int v = codes[(size_t)r * cols + c];
      OB_CHECK(v >= -127 && v <= 127, "pack_int8: code ", v, " at (", r, ", ", c, ") is outside [-127, 127]");
    }
    std::memcpy(m.data.data() + (size_t)r * m.row_bytes, codes.data() + (size_t)r * cols, cols);
  }
  return m;
}

PackedMatrix pack_f32(std::span<const float> values, int rows, int cols) {
  check_size(values.size(), rows, cols, "pack_f32");
  PackedMatrix m;
  m.format = PackedFormat::F32;
  m.rows = rows;
  m.cols = m.padded_cols = cols;
  m.row_bytes = (size_t)cols * 4;
  m.data = AlignedBytes(m.row_bytes * rows);
  std::memcpy(m.data.data(), values.data(), m.data.size());
  return m;
}

PackedMatrix pack_bf16(std::span<const float> values, int rows, int cols) {
  check_size(values.size(), rows, cols, "pack_bf16");
  PackedMatrix m;
  m.format = PackedFormat::BF16;
  m.rows = rows;
  m.cols = m.padded_cols = cols;
  m.row_bytes = (size_t)cols * 2;
  m.data = AlignedBytes(m.row_bytes * rows);
  auto* out = reinterpret_cast<uint16_t*>(m.data.data());
  for (size_t i = 0; i < values.size(); ++i) out[i] = f32_to_bf16(values[i]);
  return m;
}

PackedMatrix pack_int8_rows(std::span<const float> values, int rows, int cols) {
  check_size(values.size(), rows, cols, "pack_int8_rows");
  PackedMatrix m = make_quantized(PackedFormat::Int8, rows, cols, 1.0f);
  m.row_scales.resize(rows);
  for (int r = 0; r < rows; ++r) {
    const float* w = values.data() + (size_t)r * cols;
    float mx = 0;
    for (int c = 0; c < cols; ++c) mx = std::max(mx, std::abs(w[c]));
    const float inv = 127.0f / std::max(mx, 1e-5f);
    m.row_scales[r] = 1.0f / inv;
    auto* out = reinterpret_cast<int8_t*>(m.data.data() + (size_t)r * m.row_bytes);
    for (int c = 0; c < cols; ++c) out[c] = (int8_t)std::clamp(std::nearbyint(w[c] * inv), -127.0f, 127.0f);
  }
  return m;
}

bool can_stack_rows(std::span<const PackedMatrix* const> parts) {
  if (parts.empty()) return false;
  for (const PackedMatrix* m : parts)
    if (!takes_int8_input(m->format) || m->format != parts[0]->format || m->cols != parts[0]->cols ||
        m->row_bytes != parts[0]->row_bytes)
      return false;
  return true;
}

PackedMatrix stack_rows(std::span<const PackedMatrix* const> parts) {
  OB_CHECK(can_stack_rows(parts), "stack_rows: the parts differ in format or width");
  int rows = 0;
  for (const PackedMatrix* m : parts) rows += m->rows;
  PackedMatrix out = make_quantized(parts[0]->format, rows, parts[0]->cols, 1.0f);
  out.row_scales.reserve(rows);
  uint8_t* dst = out.data.data();
  for (const PackedMatrix* m : parts) {
    std::memcpy(dst, m->data.data(), m->row_bytes * m->rows);
    dst += m->row_bytes * m->rows;
    for (int r = 0; r < m->rows; ++r) out.row_scales.push_back(m->scale_of(r));
  }
  return out;
}

namespace {

// Writes row r of a Q6 matrix from codes[0..cols) (|code| <= 31; the padding codes are 0).
void put_q6_row(PackedMatrix& m, int r, const int8_t* codes, int cols) {
  uint8_t* row = m.data.data() + (size_t)r * m.row_bytes;
  for (int c = 0; c < m.padded_cols; ++c) {
    const int v = c < cols ? codes[c] : 0;
    OB_CHECK(v >= -31 && v <= 31, "pack_q6: code ", v, " at (", r, ", ", c, ") is outside [-31, 31]");
    const unsigned u = (unsigned)(v + 32);
    uint8_t* blk = row + (size_t)(c / 256) * 192;
    const int k = c % 256;
    blk[k % 128] |= (uint8_t)((u & 15) << (k < 128 ? 0 : 4));
    blk[128 + k % 64] |= (uint8_t)((u >> 4) << (2 * (k / 64)));
  }
}

}  // namespace

PackedMatrix pack_q6(std::span<const int8_t> codes, int rows, int cols, float scale) {
  check_size(codes.size(), rows, cols, "pack_q6");
  PackedMatrix m = make_quantized(PackedFormat::Q6, rows, cols, scale);
  for (int r = 0; r < rows; ++r) put_q6_row(m, r, codes.data() + (size_t)r * cols, cols);
  return m;
}

PackedMatrix pack_q6_rows(std::span<const float> values, int rows, int cols) {
  check_size(values.size(), rows, cols, "pack_q6_rows");
  PackedMatrix m = make_quantized(PackedFormat::Q6, rows, cols, 1.0f);
  m.row_scales.resize(rows);
  std::vector<int8_t> codes(cols);
  for (int r = 0; r < rows; ++r) {
    const float* w = values.data() + (size_t)r * cols;
    float mx = 0;
    for (int c = 0; c < cols; ++c) mx = std::max(mx, std::abs(w[c]));
    const float inv = 31.0f / std::max(mx, 1e-5f);
    m.row_scales[r] = 1.0f / inv;
    for (int c = 0; c < cols; ++c) codes[c] = (int8_t)std::clamp(std::nearbyint(w[c] * inv), -31.0f, 31.0f);
    put_q6_row(m, r, codes.data(), cols);
  }
  return m;
}

int code_at(const PackedMatrix& m, int r, int c) {
  const uint8_t* row = m.row(r);
  switch (m.format) {
    case PackedFormat::Ternary2: {
      const uint8_t byte = row[(c / 128) * 32 + c % 32];
      return ((byte >> (2 * ((c % 128) / 32))) & 3) - 1;
    }
    case PackedFormat::Ternary1_6: {
      static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
      const uint8_t q = row[(c / 160) * 32 + c % 32];
      const uint8_t t = (uint8_t)(q * kPow3[(c % 160) / 32]);
      return ((t * 3) >> 8) - 1;
    }
    case PackedFormat::Binary1: {
      const uint8_t byte = row[(c / 256) * 32 + c % 32];
      return (byte >> ((c % 256) / 32)) & 1 ? 1 : -1;
    }
    case PackedFormat::Int8:
      return reinterpret_cast<const int8_t*>(row)[c];
    case PackedFormat::Q6: {
      const uint8_t* blk = row + (size_t)(c / 256) * 192;
      const int k = c % 256;
      const int lo = (blk[k % 128] >> (k < 128 ? 0 : 4)) & 15, hi = (blk[128 + k % 64] >> (2 * (k / 64))) & 3;
      return (lo | hi << 4) - 32;
    }
    default:
      fail("code_at: ", to_string(m.format), " has no integer codes");
  }
}

float value_at(const PackedMatrix& m, int r, int c) {
  if (m.format == PackedFormat::F32) return reinterpret_cast<const float*>(m.row(r))[c];
  if (m.format == PackedFormat::BF16) return bf16_to_f32(reinterpret_cast<const uint16_t*>(m.row(r))[c]);
  return (float)code_at(m, r, c) * m.scale_of(r);
}

float ternary_codes(std::span<const float> w, std::span<int8_t> codes, TernaryScaleRule rule) {
  double sum = 0;
  for (float v : w) sum += std::abs((double)v);
  const double mean = sum / (double)w.size();
  const float g = (float)(rule == TernaryScaleRule::ClampedMean ? std::max(mean, 1e-5) : mean + 1e-5);
  for (size_t i = 0; i < w.size(); ++i) codes[i] = (int8_t)std::clamp(std::nearbyint(w[i] / g), -1.0f, 1.0f);
  return g;
}

float binary_signs(std::span<const float> w, std::span<int8_t> signs) {
  double sum = 0;
  for (float v : w) sum += v;
  const float center = (float)(sum / (double)w.size());
  double dev = 0;
  for (float v : w) dev += std::abs((double)v - center);
  for (size_t i = 0; i < w.size(); ++i) signs[i] = w[i] - center >= 0 ? 1 : -1;
  return (float)(dev / (double)w.size());
}

float int8_codes(std::span<const float> w, std::span<int8_t> codes) {
  double m = 0;
  for (float v : w) m = std::max(m, std::abs((double)v));
  const float inv = 127.0f / std::max((float)m, 1e-5f);
  for (size_t i = 0; i < w.size(); ++i) codes[i] = (int8_t)std::clamp(std::nearbyint(w[i] * inv), -127.0f, 127.0f);
  return 1.0f / inv;
}

float bf16_to_f32(uint16_t b) {
  const uint32_t u = (uint32_t)b << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

uint16_t f32_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace onebit::infer
