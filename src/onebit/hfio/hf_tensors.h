#pragma once
// The tensors of a Hugging Face model dir: model.safetensors, or the shards that
// model.safetensors.index.json's "weight_map" names. Floats of any width HF stores (F32, BF16, F16)
// are read as f32; errors name the file and the tensor.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/formats/safetensors.h"

namespace onebit::hfio {

class HfTensors {
 public:
  explicit HfTensors(const fs::path& dir);

  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  std::vector<std::string> names() const;
  const formats::TensorInfo& info(const std::string& name) const;  // error if absent
  // "<file>: tensor \"<name>\"", the prefix of every error about that tensor.
  std::string describe(const std::string& name) const;
  // An F32, BF16 or F16 tensor as f32 (other dtypes are an error naming the tensor).
  std::vector<float> read_float(const std::string& name) const;
  std::span<const uint8_t> bytes(const std::string& name) const;

 private:
  const formats::SafetensorsFile& file_of(const std::string& name) const;
  std::vector<std::unique_ptr<formats::SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor -> index into files_
};

}  // namespace onebit::hfio
