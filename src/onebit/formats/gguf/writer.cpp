#include "onebit/formats/gguf/writer.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "onebit/core/error.h"

namespace onebit::formats::gguf {

namespace {

class Buffer {
 public:
  template <typename T>
  void put(T v) {
    const size_t n = s_.size();
    s_.resize(n + sizeof(T));
    std::memcpy(s_.data() + n, &v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    s_ += s;
  }
  void put_scalar(const Scalar& s) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>)
            put_string(x);
          else if constexpr (std::is_same_v<T, bool>)
            put<uint8_t>(x ? 1 : 0);
          else
            put<T>(x);
        },
        s);
  }
  void pad_to(size_t alignment) { s_.resize((s_.size() + alignment - 1) / alignment * alignment, '\0'); }
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

}  // namespace

size_t tensor_nbytes(const std::string& name, GgmlType type, const std::vector<int64_t>& ne) {
  const auto tr = ggml_type_traits(static_cast<uint32_t>(type));
  OB_CHECK(tr, "GGUF tensor \"", printable(name), "\": unknown ggml type ", static_cast<uint32_t>(type));
  OB_CHECK(!ne.empty() && ne.size() <= static_cast<size_t>(kMaxDims), "GGUF tensor \"", printable(name), "\" has ",
           ne.size(), " dimensions (1 to 4 allowed)");
  for (int64_t n : ne) OB_CHECK(n > 0, "GGUF tensor \"", printable(name), "\" has a dimension of ", n);
  OB_CHECK(ne[0] % tr->block == 0, "GGUF tensor \"", printable(name), "\" of type ", tr->name, " has rows of ",
           ne[0], " values, not a multiple of its block size ", tr->block);
  size_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= static_cast<size_t>(ne[i]);
  return rows * ggml_row_bytes(type, ne[0]);
}

void GgufWriter::set(const std::string& key, Value v) {
  OB_CHECK(!key.empty(), "GGUF metadata key is empty");
  if (v.is_array()) {
    OB_CHECK(v.elem != ValueType::ARRAY, "GGUF key \"", printable(key), "\": arrays of arrays are not supported");
  }
  for (auto& [k, old] : kv_)
    if (k == key) {
      old = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::set_string_array(const std::string& key, const std::vector<std::string>& items) {
  set(key, Value::array_of(ValueType::STRING, std::vector<Scalar>(items.begin(), items.end())));
}
void GgufWriter::set_i32_array(const std::string& key, const std::vector<int32_t>& items) {
  set(key, Value::array_of(ValueType::I32, std::vector<Scalar>(items.begin(), items.end())));
}
void GgufWriter::set_f32_array(const std::string& key, const std::vector<float>& items) {
  set(key, Value::array_of(ValueType::F32, std::vector<Scalar>(items.begin(), items.end())));
}

void GgufWriter::set_alignment(uint32_t alignment) {
  OB_CHECK(alignment != 0 && (alignment & (alignment - 1)) == 0, "GGUF alignment ", alignment,
           " is not a power of two");
  OB_CHECK(tensors_.empty(), "GGUF alignment must be set before tensors are added");
  alignment_ = alignment;
  set_u32("general.alignment", alignment);
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Producer produce) {
  OB_CHECK(!name.empty() && name.size() <= kMaxNameBytes, "GGUF tensor name \"", printable(name), "\" must be 1 to ",
           kMaxNameBytes, " bytes");
  for (const auto& t : tensors_) OB_CHECK(t.name != name, "GGUF tensor \"", printable(name), "\" added twice");
  const size_t nbytes = tensor_nbytes(name, type, ne);
  data_size_ = align_up(data_size_, alignment_);
  tensors_.push_back({name, type, std::move(ne), nbytes, data_size_, std::move(produce)});
  data_size_ += nbytes;
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                            std::vector<uint8_t> bytes) {
  auto shared = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  add_tensor(name, type, std::move(ne), [shared](std::vector<uint8_t>& out) { out = *shared; });
}

void GgufWriter::write(const fs::path& path) const {
  Buffer h;
  h.put<uint32_t>(0x46554747u);  // "GGUF" little-endian
  h.put<uint32_t>(kVersion);
  h.put<uint64_t>(tensors_.size());
  h.put<uint64_t>(kv_.size());
  for (const auto& [key, v] : kv_) {
    h.put_string(key);
    h.put<uint32_t>(static_cast<uint32_t>(v.type));
    if (v.is_array()) {
      h.put<uint32_t>(static_cast<uint32_t>(v.elem));
      h.put<uint64_t>(v.array.size());
      for (const auto& s : v.array) h.put_scalar(s);
    } else {
      h.put_scalar(v.scalar);
    }
  }
  for (const auto& t : tensors_) {
    h.put_string(t.name);
    h.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) h.put<int64_t>(n);
    h.put<uint32_t>(static_cast<uint32_t>(t.type));
    h.put<uint64_t>(t.offset);
  }
  h.pad_to(alignment_);

  AtomicFileWriter out(path);
  out.write(h.str());
  std::vector<uint8_t> bytes;
  uint64_t pos = 0;
  static const std::vector<uint8_t> zeros(256, 0);
  for (const auto& t : tensors_) {
    while (pos < t.offset) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(t.offset - pos, zeros.size()));
      out.write(zeros.data(), n);
      pos += n;
    }
    bytes.clear();
    t.produce(bytes);
    OB_CHECK(bytes.size() == t.nbytes, "GGUF tensor \"", printable(t.name), "\": produced ", bytes.size(),
             " bytes, expected ", t.nbytes);
    out.write(bytes.data(), bytes.size());
    pos += bytes.size();
  }
  // llama.cpp's writer pads the data section to the alignment too; readers accept either.
  while (pos % alignment_ != 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(alignment_ - pos % alignment_, zeros.size()));
    out.write(zeros.data(), n);
    pos += n;
  }
  out.commit();
}

}  // namespace onebit::formats::gguf
