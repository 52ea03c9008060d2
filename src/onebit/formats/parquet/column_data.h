#pragma once
// One column of one row group, decoded: every row's value as bytes (a string for BYTE_ARRAY, the
// little-endian bytes of fixed-width types, one byte 0/1 for BOOLEAN) and a null flag.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "onebit/formats/parquet/metadata.h"

namespace onebit::parquet {

struct ColumnInfo {
  std::string name;
  PhysicalType type = PhysicalType::ByteArray;
  int32_t type_length = 0;
  bool nullable = false;
  size_t leaf_index = 0;      // position among the row group's column chunks
};

class ColumnData {
 public:
  size_t size() const { return valid_.size(); }
  bool is_null(size_t row) const { return !valid_[row]; }
  std::string_view value(size_t row) const {
    return std::string_view(bytes_.data() + offsets_[row], offsets_[row + 1] - offsets_[row]);
  }
  // Bytes held (values, offsets, flags): what one row group of this column costs in memory.
  size_t memory_bytes() const { return bytes_.capacity() + offsets_.capacity() * 8 + valid_.capacity(); }

  void clear() {
    bytes_.clear();
    offsets_.assign(1, 0);
    valid_.clear();
  }
  void reserve_bytes(size_t n) { bytes_.reserve(n); }
  void reserve_rows(size_t n) {
    offsets_.reserve(n + 1);
    valid_.reserve(n);
  }
  void append(std::string_view v) {
    bytes_.append(v);
    offsets_.push_back(bytes_.size());
    valid_.push_back(1);
  }
  void append_null() {
    offsets_.push_back(bytes_.size());
    valid_.push_back(0);
  }

 private:
  std::string bytes_;
  std::vector<uint64_t> offsets_{0};
  std::vector<uint8_t> valid_;
};

}  // namespace onebit::parquet
