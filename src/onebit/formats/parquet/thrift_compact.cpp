#include "onebit/formats/parquet/thrift_compact.h"

#include "onebit/core/error.h"

namespace onebit::parquet {

namespace {
constexpr int kMaxDepth = 63;

int64_t unzigzag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }
}  // namespace

ThriftReader::ThriftReader(const uint8_t* data, size_t size, std::string what)
    : data_(data), size_(size), what_(std::move(what)) {}

void ThriftReader::error(const std::string& msg) const { fail(what_, ": bad thrift at byte ", pos_, ": ", msg); }

uint8_t ThriftReader::read_byte() {
  if (pos_ >= size_) error("truncated");
  return data_[pos_++];
}

uint64_t ThriftReader::read_varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    uint8_t b = read_byte();
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  error("varint longer than 10 bytes");
}

void ThriftReader::begin_struct() {
  if (depth_ >= kMaxDepth) error("structs nested too deeply");
  last_id_[++depth_] = 0;
}

void ThriftReader::end_struct() { --depth_; }

ThriftField ThriftReader::next_field() {
  uint8_t b = read_byte();
  ThriftField f;
  f.type = static_cast<ThriftType>(b & 0x0f);
  if (f.type == ThriftType::Stop) return f;
  if (b & 0xf0) {
    f.id = static_cast<int16_t>(last_id_[depth_] + (b >> 4));
  } else {
    f.id = static_cast<int16_t>(unzigzag(read_varint()));
  }
  if (static_cast<uint8_t>(f.type) > static_cast<uint8_t>(ThriftType::Struct)) error(cat("unknown field type ", b & 0x0f));
  last_id_[depth_] = f.id;
  return f;
}

bool ThriftReader::read_bool(const ThriftField& f) {
  if (f.type == ThriftType::BoolTrue) return true;
  if (f.type == ThriftType::BoolFalse) return false;
  error(cat("field ", f.id, " should be a bool"));
}

int32_t ThriftReader::read_i32() {
  int64_t v = unzigzag(read_varint());
  if (v < INT32_MIN || v > INT32_MAX) error("i32 out of range");
  return static_cast<int32_t>(v);
}

int64_t ThriftReader::read_i64() { return unzigzag(read_varint()); }

std::string_view ThriftReader::read_binary() {
  uint64_t n = read_varint();
  if (n > size_ - pos_) error(cat("binary of ", n, " bytes runs past the end"));
  std::string_view s(reinterpret_cast<const char*>(data_ + pos_), n);
  pos_ += n;
  return s;
}

uint32_t ThriftReader::read_list_header(ThriftType& elem_type) {
  uint8_t b = read_byte();
  uint64_t n = b >> 4;
  if (n == 15) n = read_varint();
  elem_type = static_cast<ThriftType>(b & 0x0f);
  if (n > size_ - pos_) error(cat("list of ", n, " elements runs past the end"));
  return static_cast<uint32_t>(n);
}

void ThriftReader::skip(ThriftType t) {
  switch (t) {
    case ThriftType::BoolTrue:
    case ThriftType::BoolFalse:
      return;  // a bool field's value is in its header
    case ThriftType::Byte:
      read_byte();
      return;
    case ThriftType::I16:
    case ThriftType::I32:
    case ThriftType::I64:
      read_varint();
      return;
    case ThriftType::Double:
      if (size_ - pos_ < 8) error("truncated double");
      pos_ += 8;
      return;
    case ThriftType::Binary:
      read_binary();
      return;
    case ThriftType::List:
    case ThriftType::Set: {
      ThriftType et;
      uint32_t n = read_list_header(et);
      if (depth_ >= kMaxDepth) error("containers nested too deeply");
      ++depth_;
      // Inside a list a bool is one byte, not a field header.
      for (uint32_t i = 0; i < n; ++i) skip(et == ThriftType::BoolTrue || et == ThriftType::BoolFalse ? ThriftType::Byte : et);
      --depth_;
      return;
    }
    case ThriftType::Map: {
      uint64_t n = read_varint();
      if (n == 0) return;
      if (n > size_ - pos_) error("map runs past the end");
      uint8_t kv = read_byte();
      auto fix = [](ThriftType x) {
        return x == ThriftType::BoolTrue || x == ThriftType::BoolFalse ? ThriftType::Byte : x;
      };
      ThriftType kt = fix(static_cast<ThriftType>(kv >> 4)), vt = fix(static_cast<ThriftType>(kv & 0x0f));
      if (depth_ >= kMaxDepth) error("containers nested too deeply");
      ++depth_;
      for (uint64_t i = 0; i < n; ++i) {
        skip(kt);
        skip(vt);
      }
      --depth_;
      return;
    }
    case ThriftType::Struct: {
      begin_struct();
      for (ThriftField f = next_field(); f.type != ThriftType::Stop; f = next_field()) skip(f.type);
      end_struct();
      return;
    }
    case ThriftType::Stop:
      break;
  }
  error(cat("cannot skip a value of type ", static_cast<int>(t)));
}

}  // namespace onebit::parquet
