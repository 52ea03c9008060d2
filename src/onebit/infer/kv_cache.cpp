#include "onebit/infer/kv_cache.h"

#include <algorithm>
#include <cmath>

#include "onebit/core/error.h"
#include "onebit/infer/kernels/half.h"

namespace onebit::infer {

const char* to_string(KvType t) {
  switch (t) {
    case KvType::F16:
      return "f16";
    case KvType::F32:
      return "f32";
    case KvType::Int8:
      return "int8";
  }
  return "?";
}

namespace {

// One row as int8 codes with an absmax scale (round half to even, as the activation quantizer).
float quantize_row(const float* x, int n, int8_t* q) {
  float m = 0.0f;
  for (int i = 0; i < n; ++i) m = std::max(m, std::abs(x[i]));
  if (!std::isfinite(m)) fail("a key or value overflowed f32: the weights are out of range");
  if (m == 0.0f) {
    std::fill(q, q + n, (int8_t)0);
    return 0.0f;
  }
  const float s = m / 127.0f, inv = 127.0f / m;
  for (int i = 0; i < n; ++i) q[i] = (int8_t)std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f);
  return s;
}

}  // namespace

KvCache::KvCache(int layers, int kv_heads, int head_dim, int context, KvType type)
    : type_(type), layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), context_(context) {
  OB_CHECK(layers > 0 && kv_heads > 0 && head_dim > 0 && context > 0, "KV cache: bad shape");
  const size_t n = (size_t)layers * 2 * kv_heads * context * head_dim;
  if (type == KvType::F16) {
    f16_.assign(n, 0);
  } else if (type == KvType::F32) {
    f32_.assign(n, 0.0f);
  } else {
    i8_.assign(n, 0);
    row_scale_.assign(n / head_dim, 0.0f);
  }
}

void KvCache::store(int layer, int pos, const float* k, const float* v) {
  OB_CHECK(layer >= 0 && layer < layers_ && pos >= 0 && pos < context_, "KV cache: position ", pos,
           " outside the context of ", context_);
  for (int h = 0; h < kv_heads_; ++h) {
    const size_t ko = offset(layer, 0, h) + (size_t)pos * head_dim_, vo = offset(layer, 1, h) + (size_t)pos * head_dim_;
    const float* kh = k + (size_t)h * head_dim_;
    const float* vh = v + (size_t)h * head_dim_;
    if (type_ == KvType::Int8) {
      row_scale_[ko / head_dim_] = quantize_row(kh, head_dim_, i8_.data() + ko);
      row_scale_[vo / head_dim_] = quantize_row(vh, head_dim_, i8_.data() + vo);
    } else if (type_ == KvType::F16) {
      for (int i = 0; i < head_dim_; ++i) {
        f16_[ko + i] = f32_to_f16(kh[i]);
        f16_[vo + i] = f32_to_f16(vh[i]);
      }
    } else {
      for (int i = 0; i < head_dim_; ++i) {
        f32_[ko + i] = kh[i];
        f32_[vo + i] = vh[i];
      }
    }
  }
}

}  // namespace onebit::infer
