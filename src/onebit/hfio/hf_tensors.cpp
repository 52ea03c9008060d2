#include "onebit/hfio/hf_tensors.h"

#include <cmath>
#include <cstring>
#include <set>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"

namespace onebit::hfio {
namespace {

float bf16_to_f32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float f16_to_f32(uint16_t h) {
  const int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0)
    v = std::ldexp(static_cast<float>(mant), -24);  // subnormal (or zero)
  else if (exp == 31)
    v = mant ? NAN : INFINITY;
  else
    v = std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
  return sign ? -v : v;
}

}  // namespace

HfTensors::HfTensors(const fs::path& dir) {
  const fs::path single = dir / "model.safetensors", index = dir / "model.safetensors.index.json";
  std::vector<fs::path> shards;
  if (fs::exists(single)) {
    shards.push_back(single);
  } else if (fs::exists(index)) {
    const json j = read_json_file(index);
    const std::string where = printable(index.string(), 4096);
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      fail(where, ": missing key \"weight_map\" (an object of tensor name -> shard file)");
    std::set<std::string> seen;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) fail(where, ": key \"weight_map.", printable(name), "\" must be a file name");
      const std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f.empty() || f == "." || f == "..")
        fail(where, ": key \"weight_map.", printable(name), "\" names \"", printable(f),
             "\", not a file in ", printable(dir.string(), 4096));
      if (seen.insert(f).second) shards.push_back(dir / f);
    }
  } else {
    fail(printable(dir.string(), 4096), ": no model.safetensors nor model.safetensors.index.json");
  }
  for (const fs::path& p : shards) {
    if (!fs::exists(p)) fail(printable(p.string(), 4096), ": not found (named by model.safetensors.index.json)");
    files_.push_back(std::make_unique<formats::SafetensorsFile>(p));
    for (const auto& t : files_.back()->tensors())
      if (!where_.emplace(t.name, files_.size() - 1).second)
        fail(printable(p.string(), 4096), ": tensor \"", printable(t.name), "\" is also in another shard");
  }
}

std::vector<std::string> HfTensors::names() const {
  std::vector<std::string> out;
  for (const auto& [name, i] : where_) out.push_back(name);
  return out;
}

const formats::SafetensorsFile& HfTensors::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail("tensor \"", printable(name), "\" is missing from the checkpoint");
  return *files_[it->second];
}

const formats::TensorInfo& HfTensors::info(const std::string& name) const { return file_of(name).info(name); }

std::string HfTensors::describe(const std::string& name) const {
  return cat(printable(file_of(name).path().string(), 4096), ": tensor \"", printable(name), "\"");
}

std::span<const uint8_t> HfTensors::bytes(const std::string& name) const { return file_of(name).bytes(name); }

std::vector<float> HfTensors::read_float(const std::string& name) const {
  const formats::TensorInfo& t = info(name);
  const auto b = bytes(name);
  std::vector<float> out(t.numel());
  switch (t.dtype) {
    case formats::DType::F32:
      if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
      break;
    case formats::DType::BF16:
    case formats::DType::F16:
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, b.data() + 2 * i, 2);
        out[i] = t.dtype == formats::DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
      }
      break;
    default:
      fail(describe(name), " is ", formats::dtype_name(t.dtype), "; expected F32, BF16 or F16 weights");
  }
  for (size_t i = 0; i < out.size(); ++i)
    if (!std::isfinite(out[i])) fail(describe(name), " holds a non-finite value at element ", i);
  return out;
}

}  // namespace onebit::hfio
