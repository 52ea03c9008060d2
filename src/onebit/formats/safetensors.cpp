#include "onebit/formats/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"

namespace onebit::formats {

namespace {

struct DTypeDesc {
  DType d;
  const char* name;
  size_t size;
};
constexpr DTypeDesc kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},     {DType::I8, "I8", 1},   {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},   {DType::F16, "F16", 2},   {DType::BF16, "BF16", 2}, {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},   {DType::F32, "F32", 4},   {DType::F64, "F64", 8}, {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
};

// A JSON string literal escaped the way serde_json (the Rust crate) does; nlohmann's dump()
// escapes the same set (quote, backslash, control characters) and leaves UTF-8 as is.
std::string quoted(const std::string& s) { return json(s).dump(); }

// Guards against absurd headers before allocating (the Rust crate's limit is 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

}  // namespace

const char* dtype_name(DType d) { return kDTypes[static_cast<int>(d)].name; }
size_t dtype_size(DType d) { return kDTypes[static_cast<int>(d)].size; }

DType dtype_from_name(const std::string& name, const std::string& where) {
  for (const auto& e : kDTypes)
    if (name == e.name) return e.d;
  fail(where, ": unsupported safetensors dtype \"", printable(name), "\"");
}

size_t TensorInfo::numel() const {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += cat(i ? ", " : "", shape[i]);
  return s + "]";
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            const void* data) {
  OB_CHECK(name != "__metadata__", "safetensors: \"__metadata__\" is not a valid tensor name");
  for (const auto& e : entries_) OB_CHECK(e.info.name != name, "safetensors: duplicate tensor \"", name, "\"");
  uint64_t nbytes = dtype_size(dtype);
  for (int64_t s : shape) {
    OB_CHECK(s >= 0, "safetensors: tensor \"", name, "\" has a negative dimension");
    OB_CHECK(!__builtin_mul_overflow(nbytes, (uint64_t)s, &nbytes), "safetensors: tensor \"", name, "\" shape ",
             shape_string(shape), " is too large");
  }
  OB_CHECK(data || nbytes == 0, "safetensors: tensor \"", name, "\" has ", nbytes, " bytes but no data");
  entries_.push_back(Entry{TensorInfo{name, dtype, std::move(shape)}, data});
}

std::vector<const SafetensorsWriter::Entry*> SafetensorsWriter::ordered() const {
  // The Rust crate sorts by dtype descending (its enum order, which kDTypes mirrors), then name.
  std::vector<const Entry*> v;
  for (const auto& e : entries_) v.push_back(&e);
  std::sort(v.begin(), v.end(), [](const Entry* a, const Entry* b) {
    if (a->info.dtype != b->info.dtype) return a->info.dtype > b->info.dtype;
    return a->info.name < b->info.name;
  });
  return v;
}

std::string SafetensorsWriter::header() const {
  std::string h = "{";
  bool first = true;
  if (!metadata_.empty()) {
    h += "\"__metadata__\":{";
    bool f2 = true;
    for (const auto& [k, v] : metadata_) {
      h += cat(f2 ? "" : ",", quoted(k), ":", quoted(v));
      f2 = false;
    }
    h += "}";
    first = false;
  }
  size_t offset = 0;
  for (const Entry* e : ordered()) {
    size_t n = e->info.nbytes();
    h += cat(first ? "" : ",", quoted(e->info.name), ":{\"dtype\":\"", dtype_name(e->info.dtype),
             "\",\"shape\":[");
    for (size_t i = 0; i < e->info.shape.size(); ++i) h += cat(i ? "," : "", e->info.shape[i]);
    h += cat("],\"data_offsets\":[", offset, ",", offset + n, "]}");
    offset += n;
    first = false;
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

std::string SafetensorsWriter::serialize() const {
  std::string h = header();
  uint64_t n = h.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);  // little-endian hosts only (x86-64, aarch64)
  out += h;
  for (const Entry* e : ordered()) out.append(static_cast<const char*>(e->data), e->info.nbytes());
  return out;
}

void SafetensorsWriter::write(const fs::path& path) const {
  std::string h = header();
  uint64_t n = h.size();
  AtomicFileWriter w(path);
  w.write(&n, 8);
  w.write(h);
  for (const Entry* e : ordered()) w.write(e->data, e->info.nbytes());
  w.commit();
}

SafetensorsFile::SafetensorsFile(const fs::path& path) : map_(path) {
  const std::string where = printable(path.string(), 4096);
  if (map_.size() < 8) fail(where, ": not a safetensors file (", map_.size(), " bytes, shorter than the 8-byte header length)");
  uint64_t n = 0;
  std::memcpy(&n, map_.data(), 8);
  if (n > kMaxHeaderBytes || n > map_.size() - 8)
    fail(where, ": corrupt safetensors header length ", n, " (file has ", map_.size(), " bytes)");
  const char* hp = reinterpret_cast<const char*>(map_.data()) + 8;
  json j;
  // nlohmann keeps the last of duplicate keys silently; a file naming a tensor twice is corrupt.
  std::string duplicate;
  std::set<std::string> top_keys;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxJsonDepth && (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start))
      fail(where, ": corrupt safetensors header: nested deeper than ", kMaxJsonDepth, " levels");
    if (depth == 1 && event == json::parse_event_t::key && !top_keys.insert(parsed.get<std::string>()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  try {
    j = json::parse(hp, hp + n, on_event);
  } catch (const json::exception& e) {
    fail(where, ": corrupt safetensors header: ", printable(e.what()));
  }
  if (!j.is_object()) fail(where, ": corrupt safetensors header: not a JSON object");
  if (!duplicate.empty()) fail(where, ": corrupt safetensors header: \"", printable(duplicate), "\" appears twice");
  const size_t data_begin = 8 + n;
  const size_t data_size = map_.size() - data_begin;
  struct Span {
    size_t b, e, idx;
  };
  std::vector<Span> spans;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (!it->is_object()) fail(where, ": __metadata__ must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) fail(where, ": __metadata__ value \"", printable(m.key()), "\" is not a string");
        metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const std::string tw = cat(where, ": tensor \"", printable(name), "\"");
    if (!it->is_object()) fail(tw, ": entry is not an object");
    TensorInfo ti;
    ti.name = name;
    ti.dtype = dtype_from_name(json_get<std::string>(*it, "dtype", tw), tw);
    // nlohmann would convert 2.5 to 2 and -1 to 2^64-1: only non-negative integers are accepted.
    auto naturals = [&](const char* key) {
      auto f = it->find(key);
      if (f == it->end()) fail(tw, ": missing key \"", key, "\"");
      if (!f->is_array()) fail(tw, ": key \"", key, "\" must be an array of non-negative integers");
      for (const json& v : *f)
        if (!v.is_number_unsigned())
          fail(tw, ": key \"", key, "\" must be an array of non-negative integers (got ", json_excerpt(*f), ")");
      return f->get<std::vector<uint64_t>>();
    };
    for (uint64_t s : naturals("shape")) {
      if (s > (uint64_t)INT64_MAX) fail(tw, ": dimension ", s, " is too large");
      ti.shape.push_back((int64_t)s);
    }
    // The byte count must not wrap around (the Rust crate uses checked multiplication too).
    uint64_t nbytes = dtype_size(ti.dtype);
    for (int64_t s : ti.shape)
      if (__builtin_mul_overflow(nbytes, (uint64_t)s, &nbytes))
        fail(tw, ": shape ", shape_string(ti.shape), " is too large (its byte count overflows)");
    auto off = naturals("data_offsets");
    if (off.size() != 2 || off[1] < off[0]) fail(tw, ": data_offsets must be [begin, end] with begin <= end");
    if (off[1] > data_size)
      fail(tw, ": data_offsets [", off[0], ", ", off[1], "] run past the end of the file (data region is ",
           data_size, " bytes; truncated?)");
    if (off[1] - off[0] != ti.nbytes())
      fail(tw, ": data_offsets cover ", off[1] - off[0], " bytes but ", dtype_name(ti.dtype), " ",
           shape_string(ti.shape), " needs ", ti.nbytes());
    spans.push_back({off[0], off[1], tensors_.size()});
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(ti));
    begin_.push_back(data_begin + off[0]);
  }
  // Like the Rust crate: tensors must tile the data region with no gap, overlap or trailing bytes.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.b < b.b || (a.b == b.b && a.e < b.e); });
  size_t expect = 0;
  for (const Span& s : spans) {
    if (s.b != expect)
      fail(where, ": tensor \"", printable(tensors_[s.idx].name), "\": data_offsets start at ", s.b, ", expected ", expect,
           " (gap or overlap)");
    expect = s.e;
  }
  if (expect != data_size)
    fail(where, ": data region is ", data_size, " bytes but the tensors cover ", expect, " (truncated or trailing bytes)");
  // Present tensors in file order.
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = spans[i].idx;
  std::vector<TensorInfo> t2;
  std::vector<size_t> b2;
  for (size_t i : order) {
    t2.push_back(std::move(tensors_[i]));
    b2.push_back(begin_[i]);
  }
  tensors_ = std::move(t2);
  begin_ = std::move(b2);
  index_.clear();
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail(printable(path().string(), 4096), ": tensor \"", printable(name), "\" not found");
  return tensors_[it->second];
}

std::span<const uint8_t> SafetensorsFile::bytes(const std::string& name) const {
  const TensorInfo& ti = info(name);
  return {map_.data() + begin_[index_.at(name)], ti.nbytes()};
}

void SafetensorsFile::read_f32(const std::string& name, const std::vector<int64_t>& expected_shape,
                               std::span<float> out) const {
  const TensorInfo& ti = info(name);
  const std::string tw = cat(printable(path().string(), 4096), ": tensor \"", printable(name), "\"");
  if (ti.dtype != DType::F32) fail(tw, ": expected dtype F32, found ", dtype_name(ti.dtype));
  if (ti.shape != expected_shape)
    fail(tw, ": shape ", shape_string(ti.shape), " does not match the expected ", shape_string(expected_shape));
  OB_CHECK(out.size() == ti.numel(), tw, ": destination holds ", out.size(), " floats, tensor has ", ti.numel());
  auto b = bytes(name);
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
}

}  // namespace onebit::formats
