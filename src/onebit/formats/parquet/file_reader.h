#pragma once
// Reading a Parquet file one row group at a time, only the requested columns:
//
//   parquet::FileReader r(path, {"content"});
//   parquet::RowGroupData rg;
//   for (size_t g = 0; g < r.num_row_groups(); ++g) {
//     r.read_row_group(g, rg);                       // reuses rg's memory
//     for (size_t row = 0; row < rg.num_rows; ++row)
//       if (!rg.columns[0].is_null(row)) use(rg.columns[0].value(row));
//   }
//
// The file is memory-mapped; what is decoded at any time is one row group of the requested
// columns, so memory stays bounded whatever the file size. The values are views into buffers the
// RowGroupData owns or into the mapping: valid while the reader lives and until the next read
// into the same RowGroupData. Only flat schemas are read (top-level
// required or optional primitive columns); asking for a nested column is an error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/formats/parquet/column_data.h"
#include "onebit/formats/parquet/column_reader.h"
#include "onebit/formats/parquet/metadata.h"

namespace onebit::parquet {

struct RowGroupData {
  size_t num_rows = 0;
  std::vector<ColumnData> columns;  // in the order the columns were requested
};

class FileReader {
 public:
  // columns empty = every top-level column, in schema order.
  explicit FileReader(const fs::path& path, const std::vector<std::string>& columns = {});
  // Reads from memory that outlives the reader; `name` stands for the file in errors.
  FileReader(std::string name, const uint8_t* data, size_t size, const std::vector<std::string>& columns = {});

  size_t num_row_groups() const { return meta_.row_groups.size(); }
  int64_t num_rows() const { return meta_.num_rows; }
  int64_t row_group_rows(size_t g) const { return meta_.row_groups.at(g).num_rows; }
  // Compressed bytes of the requested columns in row group g (for progress).
  uint64_t row_group_bytes(size_t g) const;
  const std::vector<ColumnInfo>& columns() const { return selected_; }
  const FileMetaData& metadata() const { return meta_; }
  const std::string& name() const { return name_; }

  void read_row_group(size_t g, RowGroupData& out);

 private:
  void open(const std::vector<std::string>& columns);
  MappedFile map_;
  std::string name_;  // printable
  const uint8_t* data_ = nullptr;
  size_t size_ = 0, data_end_ = 0;
  FileMetaData meta_;
  std::vector<ColumnInfo> selected_;
  std::vector<ColumnChunkReader> readers_;
};

}  // namespace onebit::parquet
