#pragma once
// GgufReader: a memory-mapped GGUF file (v2 or v3), validated on open: every length, count, string,
// array, type, dimension, offset and size is checked against the file before it is used, so a
// truncated or foreign file ends in one onebit::Error naming the file and the field, never a crash.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/formats/gguf/types.h"
#include "onebit/formats/gguf/value.h"

namespace onebit::formats::gguf {

struct TensorEntry {
  std::string name;
  GgmlType type;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the row length
  uint64_t offset = 0;      // from the start of the data section
  size_t nbytes = 0;
  int64_t numel() const;
  // Row-major shape (outermost first), the reverse of ne: a [out, in] matrix.
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

class GgufReader {
 public:
  explicit GgufReader(const fs::path& path);

  const fs::path& path() const { return map_.path(); }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }

  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(const std::string& key) const;  // nullptr when absent
  bool has(const std::string& key) const { return find(key) != nullptr; }
  // Typed getters: errors name the file and the key when it is absent or of another type.
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;   // any integer type
  double get_float(const std::string& key) const;  // F32, F64 or an integer
  bool get_bool(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  std::vector<float> get_float_array(const std::string& key) const;

  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  const TensorEntry* find_tensor(const std::string& name) const;
  const TensorEntry& tensor(const std::string& name) const;  // error naming the file if absent
  std::span<const uint8_t> bytes(const TensorEntry& t) const;
  // The tensor's values as f32 (F32, F16, BF16, TQ1_0, TQ2_0); error naming the tensor otherwise.
  std::vector<float> read_f32(const TensorEntry& t) const;

 private:
  const Value& get(const std::string& key) const;
  MappedFile map_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_start_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<TensorEntry> tensors_;
};

}  // namespace onebit::formats::gguf
