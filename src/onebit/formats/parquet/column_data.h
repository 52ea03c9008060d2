#pragma once
// One column of one row group, decoded: every row's value as bytes (a string for BYTE_ARRAY, the
// little-endian bytes of fixed-width types, one byte 0/1 for BOOLEAN) and a null flag.
//
// Values are views, not copies: into the row group's decompressed pages and decoder output, which
// this object owns, or, for uncompressed pages, straight into the file's mapping. So a ColumnData
// is valid while its FileReader lives and until the next read into it. Its buffers are reused from
// row group to row group, so steady-state reading does not allocate.
#include <cstddef>
#include <cstdint>
#include <memory>
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
  std::string_view value(size_t row) const { return values_[row]; }
  // Bytes held (pages, decoder output, views, flags): what one row group of this column costs.
  size_t memory_bytes() const {
    size_t n = values_.capacity() * sizeof(std::string_view) + valid_.capacity();
    for (size_t c : page_caps_) n += c;
    for (const auto& s : scratch_) n += s->capacity();
    return n;
  }

  // --- for the column reader ---
  void clear() {
    values_.clear();
    valid_.clear();
    pages_used_ = scratch_used_ = 0;
  }
  void reserve_rows(size_t n) {
    values_.reserve(n);
    valid_.reserve(n);
  }
  void append(std::string_view v) {
    values_.push_back(v);
    valid_.push_back(1);
  }
  void append_null() {
    values_.emplace_back();
    valid_.push_back(0);
  }
  // A buffer of at least n bytes that lives until the next clear() (uninitialised: the caller
  // writes every byte it later reads).
  uint8_t* page_buffer(size_t n) {
    if (pages_used_ == pages_.size()) {
      pages_.emplace_back();
      page_caps_.push_back(0);
    }
    if (page_caps_[pages_used_] < n) {
      pages_[pages_used_].reset(new uint8_t[n]);
      page_caps_[pages_used_] = n;
    }
    return pages_[pages_used_++].get();
  }
  // A string for decoder output (booleans, delta values) that lives until the next clear(). Held
  // through a pointer so views into it survive the vector growing.
  std::string& scratch() {
    if (scratch_used_ == scratch_.size()) scratch_.push_back(std::make_unique<std::string>());
    return *scratch_[scratch_used_++];
  }

 private:
  std::vector<std::string_view> values_;
  std::vector<uint8_t> valid_;
  std::vector<std::unique_ptr<uint8_t[]>> pages_;
  std::vector<size_t> page_caps_;
  std::vector<std::unique_ptr<std::string>> scratch_;
  size_t pages_used_ = 0, scratch_used_ = 0;
};

}  // namespace onebit::parquet
