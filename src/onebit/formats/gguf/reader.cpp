#include "onebit/formats/gguf/reader.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "onebit/core/error.h"
#include "onebit/formats/gguf/dequantize.h"

namespace onebit::formats::gguf {

namespace {

// A bounds-checked cursor over the mapped file: every read names what it was reading when the file
// ends first.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const fs::path& path) : d_(data), n_(size), path_(path) {}

  template <typename T>
  T get(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, d_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string get_string(const std::string& what) {
    const uint64_t len = get<uint64_t>(what);
    OB_CHECK(len <= n_ - pos_, path_.string(), ": ", what, " claims ", len, " bytes but the file has ", n_ - pos_,
             " left (truncated or not GGUF)");
    std::string s(reinterpret_cast<const char*>(d_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }
  Scalar get_scalar(ValueType t, const std::string& what) {
    switch (t) {
      case ValueType::U8: return get<uint8_t>(what);
      case ValueType::I8: return get<int8_t>(what);
      case ValueType::U16: return get<uint16_t>(what);
      case ValueType::I16: return get<int16_t>(what);
      case ValueType::U32: return get<uint32_t>(what);
      case ValueType::I32: return get<int32_t>(what);
      case ValueType::F32: return get<float>(what);
      case ValueType::BOOL: {
        const uint8_t b = get<uint8_t>(what);
        OB_CHECK(b <= 1, path_.string(), ": ", what, " is a bool with byte value ", static_cast<int>(b));
        return b == 1;
      }
      case ValueType::STRING: return get_string(what);
      case ValueType::U64: return get<uint64_t>(what);
      case ValueType::I64: return get<int64_t>(what);
      case ValueType::F64: return get<double>(what);
      case ValueType::ARRAY: break;
    }
    fail(path_.string(), ": ", what, ": arrays of arrays are not supported");
  }
  void need(size_t k, const std::string& what) const {
    OB_CHECK(k <= n_ - pos_, path_.string(), ": file ends inside ", what, " (truncated or not GGUF)");
  }
  size_t pos() const { return pos_; }
  size_t left() const { return n_ - pos_; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
  const fs::path& path_;
};

// Smallest possible encodings, to bound counts by the bytes left before allocating anything.
constexpr size_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr size_t kMinTensorInfoBytes = 8 + 1 + 4 + 4 + 8;

}  // namespace

int64_t TensorEntry::numel() const {
  int64_t n = 1;
  for (int64_t x : ne) n *= x;
  return n;
}

GgufReader::GgufReader(const fs::path& path) : map_(path) {
  const std::string file = path.string();
  Cursor c(map_.data(), map_.size(), map_.path());
  OB_CHECK(map_.size() >= 4 && std::memcmp(map_.data(), "GGUF", 4) == 0, file,
           ": not a GGUF file (the first 4 bytes are not \"GGUF\")");
  c.get<uint32_t>("magic");
  version_ = c.get<uint32_t>("the header's version");
  OB_CHECK(version_ == 2 || version_ == 3, file, ": GGUF version ", version_, " is not supported (2 or 3)");
  const uint64_t n_tensors = c.get<uint64_t>("the header's tensor count");
  const uint64_t n_kv = c.get<uint64_t>("the header's metadata count");
  OB_CHECK(n_kv <= c.left() / kMinKvBytes, file, ": header claims ", n_kv, " metadata entries, more than the file can hold");
  OB_CHECK(n_tensors <= c.left() / kMinTensorInfoBytes, file, ": header claims ", n_tensors,
           " tensors, more than the file can hold");

  std::set<std::string> keys;
  kv_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string where = cat("metadata entry ", i);
    std::string key = c.get_string(where + "'s key");
    OB_CHECK(!key.empty(), file, ": ", where, " has an empty key");
    OB_CHECK(keys.insert(key).second, file, ": metadata key \"", printable(key), "\" appears twice");
    const std::string kwhere = cat("metadata \"", printable(key), "\"");
    const uint32_t raw = c.get<uint32_t>(kwhere + "'s type");
    OB_CHECK(is_valid_value_type(raw), file, ": ", kwhere, " has unknown value type ", raw);
    Value v;
    v.type = static_cast<ValueType>(raw);
    if (v.type == ValueType::ARRAY) {
      const uint32_t raw_elem = c.get<uint32_t>(kwhere + "'s element type");
      OB_CHECK(is_valid_value_type(raw_elem) && raw_elem != static_cast<uint32_t>(ValueType::ARRAY), file, ": ",
               kwhere, " is an array of unsupported type ", raw_elem);
      v.elem = static_cast<ValueType>(raw_elem);
      const uint64_t count = c.get<uint64_t>(kwhere + "'s array length");
      const size_t min_elem = v.elem == ValueType::STRING ? 8 : value_type_size(v.elem);
      OB_CHECK(count <= c.left() / min_elem, file, ": ", kwhere, " claims ", count,
               " elements, more than the file can hold");
      v.array.reserve(static_cast<size_t>(count));
      for (uint64_t k = 0; k < count; ++k) v.array.push_back(c.get_scalar(v.elem, kwhere));
    } else {
      v.scalar = c.get_scalar(v.type, kwhere);
    }
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = find("general.alignment")) {
    OB_CHECK(a->type == ValueType::U32, file, ": metadata \"general.alignment\" must be uint32, not ",
             value_type_name(a->type));
    alignment_ = std::get<uint32_t>(a->scalar);
    OB_CHECK(alignment_ != 0 && (alignment_ & (alignment_ - 1)) == 0, file, ": general.alignment ", alignment_,
             " is not a power of two");
  }

  std::set<std::string> names;
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorEntry t;
    t.name = c.get_string(cat("tensor info ", i, "'s name"));
    const std::string tw = cat("tensor \"", printable(t.name), "\"");
    OB_CHECK(!t.name.empty() && t.name.size() <= kMaxNameBytes, file, ": ", tw, " has a name of ", t.name.size(),
             " bytes (1 to ", kMaxNameBytes, " allowed)");
    OB_CHECK(names.insert(t.name).second, file, ": ", tw, " appears twice");
    const uint32_t n_dims = c.get<uint32_t>(tw + "'s dimension count");
    OB_CHECK(n_dims >= 1 && n_dims <= static_cast<uint32_t>(kMaxDims), file, ": ", tw, " has ", n_dims,
             " dimensions (1 to 4 allowed)");
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const int64_t n = c.get<int64_t>(tw + "'s shape");
      OB_CHECK(n >= 0, file, ": ", tw, " has a negative dimension ", n);
      OB_CHECK(n == 0 || numel <= INT64_MAX / n, file, ": ", tw, " has more elements than fit in 64 bits");
      numel *= n;
      t.ne.push_back(n);
    }
    const uint32_t raw_type = c.get<uint32_t>(tw + "'s type");
    const auto tr = ggml_type_traits(raw_type);
    OB_CHECK(tr, file, ": ", tw, " has unknown ggml type ", raw_type);
    t.type = static_cast<GgmlType>(raw_type);
    OB_CHECK(t.ne[0] % tr->block == 0, file, ": ", tw, " of type ", tr->name, " has rows of ", t.ne[0],
             " values, not a multiple of its block size ", tr->block);
    const uint64_t blocks = static_cast<uint64_t>(numel / tr->block);
    OB_CHECK(blocks <= map_.size() / tr->block_bytes, file, ": ", tw, " claims more bytes than the file holds");
    t.nbytes = static_cast<size_t>(blocks * tr->block_bytes);
    t.offset = c.get<uint64_t>(tw + "'s data offset");
    OB_CHECK(t.offset % alignment_ == 0, file, ": ", tw, "'s data offset ", t.offset, " is not a multiple of the alignment ",
             alignment_);
    tensors_.push_back(std::move(t));
  }

  data_start_ = (static_cast<uint64_t>(c.pos()) + alignment_ - 1) / alignment_ * alignment_;
  const uint64_t data_size = data_start_ <= map_.size() ? map_.size() - data_start_ : 0;
  std::vector<const TensorEntry*> by_offset;
  for (const auto& t : tensors_) {
    OB_CHECK(t.offset <= data_size && t.nbytes <= data_size - t.offset, file, ": tensor \"", printable(t.name),
             "\"'s data (offset ", t.offset, ", ", t.nbytes, " bytes) runs past the end of the file (truncated?)");
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    OB_CHECK(by_offset[i - 1]->offset + by_offset[i - 1]->nbytes <= by_offset[i]->offset, file, ": tensors \"",
             printable(by_offset[i - 1]->name), "\" and \"", printable(by_offset[i]->name), "\" overlap");
}

const Value* GgufReader::find(const std::string& key) const {
  for (const auto& [k, v] : kv_)
    if (k == key) return &v;
  return nullptr;
}

const Value& GgufReader::get(const std::string& key) const {
  const Value* v = find(key);
  OB_CHECK(v, path().string(), ": metadata key \"", printable(key), "\" is missing");
  return *v;
}

namespace {
const Scalar& scalar_of(const Value& v, const std::string& what) {
  OB_CHECK(!v.is_array(), what, " must be a single value, not an array");
  return v.scalar;
}
const std::vector<Scalar>& array_of(const Value& v, const std::string& what) {
  OB_CHECK(v.is_array(), what, " must be an array, not ", value_type_name(v.type));
  return v.array;
}
}  // namespace

std::string GgufReader::get_string(const std::string& key) const {
  const std::string what = cat(path().string(), ": metadata \"", printable(key), "\"");
  const Scalar& s = scalar_of(get(key), what);
  const std::string* str = std::get_if<std::string>(&s);
  OB_CHECK(str, what, " must be a string, not ", value_type_name(scalar_type(s)));
  return *str;
}

int64_t GgufReader::get_int(const std::string& key) const {
  const std::string what = cat(path().string(), ": metadata \"", printable(key), "\"");
  return scalar_as_int(scalar_of(get(key), what), what);
}

double GgufReader::get_float(const std::string& key) const {
  const std::string what = cat(path().string(), ": metadata \"", printable(key), "\"");
  return scalar_as_float(scalar_of(get(key), what), what);
}

bool GgufReader::get_bool(const std::string& key) const {
  const std::string what = cat(path().string(), ": metadata \"", printable(key), "\"");
  const Scalar& s = scalar_of(get(key), what);
  const bool* b = std::get_if<bool>(&s);
  OB_CHECK(b, what, " must be a bool, not ", value_type_name(scalar_type(s)));
  return *b;
}

std::vector<std::string> GgufReader::get_string_array(const std::string& key) const {
  const std::string what = cat(path().string(), ": metadata \"", printable(key), "\"");
  std::vector<std::string> out;
  for (const auto& s : array_of(get(key), what)) {
    const std::string* str = std::get_if<std::string>(&s);
    OB_CHECK(str, what, " must be an array of strings");
    out.push_back(*str);
  }
  return out;
}

std::vector<int64_t> GgufReader::get_int_array(const std::string& key) const {
  const std::string what = cat(path().string(), ": metadata \"", printable(key), "\"");
  std::vector<int64_t> out;
  for (const auto& s : array_of(get(key), what)) out.push_back(scalar_as_int(s, what));
  return out;
}

std::vector<float> GgufReader::get_float_array(const std::string& key) const {
  const std::string what = cat(path().string(), ": metadata \"", printable(key), "\"");
  std::vector<float> out;
  for (const auto& s : array_of(get(key), what)) out.push_back(static_cast<float>(scalar_as_float(s, what)));
  return out;
}

const TensorEntry* GgufReader::find_tensor(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const TensorEntry& GgufReader::tensor(const std::string& name) const {
  const TensorEntry* t = find_tensor(name);
  OB_CHECK(t, path().string(), ": tensor \"", printable(name), "\" is missing");
  return *t;
}

std::span<const uint8_t> GgufReader::bytes(const TensorEntry& t) const {
  return {map_.data() + data_start_ + t.offset, t.nbytes};
}

std::vector<float> GgufReader::read_f32(const TensorEntry& t) const {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  dequantize(t.type, bytes(t), out, cat(path().string(), ": tensor \"", printable(t.name), "\""));
  return out;
}

}  // namespace onebit::formats::gguf
