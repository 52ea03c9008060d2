#pragma once
// The rows of one column of a Parquet shard as documents, for data::ParallelTokenizer: one row
// group decoded at a time (memory stays bounded whatever the shard's size), starting at any row.
// Every row is one document, a null or empty value an empty one, so that row numbers and documents
// stay one to one and the stream can account for every row (the stream appends EOT to each).
// Invalid UTF-8 is replaced by U+FFFD and counted (stats().replaced_utf8), not fatal: one odd source
// file must not stop weeks of training. A file with no rows reads as empty whatever its schema.
// Document::offset is the row's index in the file, next_offset the index after it, line = row + 1.
#include <cstdint>
#include <memory>
#include <string>

#include "onebit/core/fs.h"
#include "onebit/data/documents.h"
#include "onebit/formats/parquet/file_reader.h"

namespace onebit::stream {

class ParquetDocuments final : public data::DocumentReader {
 public:
  // `column` must be a BYTE_ARRAY (string) column; errors name the file and the column.
  ParquetDocuments(const fs::path& path, const std::string& column, uint64_t start_row);
  bool next(data::Document& doc) override;
  const data::ReadStats& stats() const override { return stats_; }
  uint64_t raw_bytes_read() const override { return raw_bytes_; }
  const std::string& name() const override { return name_; }
  uint64_t rows() const { return static_cast<uint64_t>(reader_.num_rows()); }

 private:
  parquet::FileReader reader_;
  std::string name_;
  std::shared_ptr<const std::string> source_;
  parquet::RowGroupData group_;
  size_t next_group_ = 0;
  uint64_t group_first_row_ = 0;  // file row index of group_'s first row
  size_t in_group_ = 0;           // next row within group_
  bool group_loaded_ = false;
  uint64_t raw_bytes_ = 0;
  data::ReadStats stats_;
};

}  // namespace onebit::stream
