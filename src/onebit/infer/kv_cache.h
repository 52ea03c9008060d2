#pragma once
// Keys and values of every position seen so far, per layer and KV head, sized once to the context:
// [layer][kv head][position][head_dim], f16 by default (half the bytes of f32; attention converts
// back to f32 as it reads), f32 (exact; the tests compare decode with full recompute with it), or
// int8 (a quarter of f32: each row of head_dim values as round(x / s) with its own s = max|x| / 127,
// attention folds s into the score or the softmax weight of the row).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace onebit::infer {

enum class KvType { F16, F32, Int8 };
const char* to_string(KvType t);

class KvCache {
 public:
  KvCache() = default;
  KvCache(int layers, int kv_heads, int head_dim, int context, KvType type);

  KvType type() const { return type_; }
  int context() const { return context_; }
  size_t bytes() const { return f16_.size() * 2 + f32_.size() * 4 + i8_.size() + row_scale_.size() * 4; }
  // Stores one position's keys and values (kv_heads * head_dim values each, heads concatenated).
  void store(int layer, int pos, const float* k, const float* v);
  // The first position's row of head `h` of `layer`; positions follow at head_dim apart.
  const uint16_t* keys_f16(int layer, int h) const { return f16_.data() + offset(layer, 0, h); }
  const uint16_t* values_f16(int layer, int h) const { return f16_.data() + offset(layer, 1, h); }
  const float* keys_f32(int layer, int h) const { return f32_.data() + offset(layer, 0, h); }
  const float* values_f32(int layer, int h) const { return f32_.data() + offset(layer, 1, h); }
  const int8_t* keys_i8(int layer, int h) const { return i8_.data() + offset(layer, 0, h); }
  const int8_t* values_i8(int layer, int h) const { return i8_.data() + offset(layer, 1, h); }
  // One scale per position of the rows above (value = code * scale).
  const float* key_scales(int layer, int h) const { return row_scale_.data() + offset(layer, 0, h) / head_dim_; }
  const float* value_scales(int layer, int h) const { return row_scale_.data() + offset(layer, 1, h) / head_dim_; }

 private:
  size_t offset(int layer, int kv, int h) const {
    return (((size_t)layer * 2 + kv) * kv_heads_ + h) * (size_t)context_ * head_dim_;
  }
  KvType type_ = KvType::F16;
  int layers_ = 0, kv_heads_ = 0, head_dim_ = 0, context_ = 0;
  std::vector<uint16_t> f16_;
  std::vector<float> f32_;
  std::vector<int8_t> i8_;
  std::vector<float> row_scale_;
};

}  // namespace onebit::infer
