#pragma once
// Thrift compact protocol, read side only: the encoding of the Parquet footer (FileMetaData) and of
// every page header. Every read is checked against the end of the buffer, so a lying length or a
// truncated struct becomes an onebit::Error naming `what` (the file), never an out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace onebit::parquet {

// Compact-protocol wire types (the low nibble of a field header).
enum class ThriftType : uint8_t {
  Stop = 0, BoolTrue = 1, BoolFalse = 2, Byte = 3, I16 = 4, I32 = 5, I64 = 6, Double = 7,
  Binary = 8, List = 9, Set = 10, Map = 11, Struct = 12,
};

struct ThriftField {
  int16_t id = 0;
  ThriftType type = ThriftType::Stop;
};

class ThriftReader {
 public:
  // `what` names the source in errors (e.g. "data.parquet: footer").
  ThriftReader(const uint8_t* data, size_t size, std::string what);

  // Struct framing: begin_struct() before reading a struct's fields, next_field() until it returns
  // a Stop field, end_struct() after. Nesting depth is bounded so crafted input cannot exhaust the
  // stack.
  void begin_struct();
  ThriftField next_field();
  void end_struct();

  bool read_bool(const ThriftField& f);  // a bool field carries its value in the field header
  int32_t read_i32();
  int64_t read_i64();
  std::string_view read_binary();
  // A list header: element count and type. The count is checked against the bytes left (every
  // element takes at least one byte), so a lying count cannot make a caller reserve gigabytes.
  uint32_t read_list_header(ThriftType& elem_type);
  void skip(ThriftType t);

  size_t position() const { return pos_; }
  [[noreturn]] void error(const std::string& msg) const;

 private:
  uint64_t read_varint();
  uint8_t read_byte();
  const uint8_t* data_;
  size_t size_, pos_ = 0;
  std::string what_;
  int16_t last_id_[64] = {};
  int depth_ = 0;
};

}  // namespace onebit::parquet
