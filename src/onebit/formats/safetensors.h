#pragma once
// safetensors (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
// N bytes of JSON {"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets"}},
// padded with spaces to a multiple of 8, then the tensor bytes. The writer orders tensors exactly
// as the Rust crate does (by dtype, widest first, then by name) so that files are byte-identical
// to those written by the Python `safetensors` package for the same tensors and metadata.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "onebit/core/fs.h"

namespace onebit::formats {

enum class DType { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

const char* dtype_name(DType d);
size_t dtype_size(DType d);
// Error naming `where` if `name` is not a safetensors dtype onebit understands.
DType dtype_from_name(const std::string& name, const std::string& where);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t numel() const;
  size_t nbytes() const { return numel() * dtype_size(dtype); }
};

class SafetensorsWriter {
 public:
  // The bytes are referenced, not copied: they must stay alive until write()/serialize() returns.
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data);
  void add_f32(const std::string& name, std::vector<int64_t> shape, const float* data) {
    add(name, DType::F32, std::move(shape), data);
  }
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // The padded JSON header (without the 8-byte length).
  std::string header() const;
  // Writes to a temp name and renames into place.
  void write(const fs::path& path) const;
  std::string serialize() const;  // whole file in memory (small files, tests)

 private:
  struct Entry {
    TensorInfo info;
    const void* data;
  };
  std::vector<const Entry*> ordered() const;
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A memory-mapped safetensors file, validated on open: header length, JSON, dtypes, shapes, and
// that data_offsets tile the data region exactly. Errors name the file and the tensor.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const fs::path& path);

  const fs::path& path() const { return map_.path(); }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // error naming the file if absent
  std::span<const uint8_t> bytes(const std::string& name) const;
  // Copies an F32 tensor into out after checking dtype and shape (error names file and tensor).
  void read_f32(const std::string& name, const std::vector<int64_t>& expected_shape,
                std::span<float> out) const;

 private:
  MappedFile map_;
  std::vector<TensorInfo> tensors_;
  std::vector<size_t> begin_;  // byte offset of each tensor's data in the file
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace onebit::formats
