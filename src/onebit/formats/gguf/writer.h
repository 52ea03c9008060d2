#pragma once
// GgufWriter: a GGUF v3 file (magic "GGUF", version, tensor count, metadata count, metadata, tensor
// infos, then the tensor data, each tensor aligned to general.alignment, default 32), written to a
// temp name and renamed. Tensor bytes are produced one tensor at a time while writing, so a
// multi-GB export holds one tensor in memory, not the whole model.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/formats/gguf/types.h"
#include "onebit/formats/gguf/value.h"

namespace onebit::formats::gguf {

class GgufWriter {
 public:
  // Fills exactly the tensor's byte size.
  using Producer = std::function<void(std::vector<uint8_t>& bytes)>;

  // Metadata keep their insertion order; setting a key again replaces its value in place.
  void set(const std::string& key, Value v);
  void set_string(const std::string& key, std::string s) { set(key, Value::of(std::move(s))); }
  void set_u32(const std::string& key, uint32_t v) { set(key, Value::of(v)); }
  void set_i32(const std::string& key, int32_t v) { set(key, Value::of(v)); }
  void set_f32(const std::string& key, float v) { set(key, Value::of(v)); }
  void set_bool(const std::string& key, bool v) { set(key, Value::of(v)); }
  void set_string_array(const std::string& key, const std::vector<std::string>& items);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& items);
  void set_f32_array(const std::string& key, const std::vector<float>& items);
  // general.alignment (a power of two); also stored in the metadata.
  void set_alignment(uint32_t alignment);

  // `ne` in ggml order: ne[0] is the row length (the innermost, contiguous dimension), so a row-major
  // [out, in] matrix is ne = {in, out}. ne[0] must be a multiple of the type's block size.
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Producer produce);
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, std::vector<uint8_t> bytes);

  void write(const fs::path& path) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    size_t nbytes;
    uint64_t offset;  // from the start of the data section
    Producer produce;
  };
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_size_ = 0;
};

// Bytes a tensor of `ne` and `type` occupies (error naming `name` if ne[0] is not a block multiple).
size_t tensor_nbytes(const std::string& name, GgmlType type, const std::vector<int64_t>& ne);

}  // namespace onebit::formats::gguf
