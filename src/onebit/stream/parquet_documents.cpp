#include "onebit/stream/parquet_documents.h"

#include "onebit/core/error.h"
#include "onebit/data/utf8.h"

namespace onebit::stream {

ParquetDocuments::ParquetDocuments(const fs::path& path, const std::string& column, uint64_t start_row)
    : reader_(path, {column}),
      name_(printable(path.string(), 4096)),
      source_(std::make_shared<const std::string>(name_)) {
  // A shard with no rows (The Stack has such files) may type the column as anything (pyarrow
  // writes an all-null column): there is nothing to read, so its type does not matter.
  if (rows() > 0 && (reader_.columns().size() != 1 || reader_.columns()[0].type != parquet::PhysicalType::ByteArray))
    fail(name_, ": column \"", printable(column), "\" is not a string (BYTE_ARRAY) column");
  if (start_row > rows())
    fail(name_, ": cannot resume at row ", start_row, ": the file has ", rows(), " rows (the shard changed)");
  // Skip whole row groups before start_row without decoding them.
  uint64_t first = 0;
  while (next_group_ < reader_.num_row_groups()) {
    const uint64_t n = static_cast<uint64_t>(reader_.row_group_rows(next_group_));
    if (first + n > start_row) break;
    first += n;
    ++next_group_;
  }
  group_first_row_ = first;
  in_group_ = static_cast<size_t>(start_row - first);
}

bool ParquetDocuments::next(data::Document& doc) {
  while (!group_loaded_ || in_group_ >= group_.num_rows) {
    if (group_loaded_) {
      group_first_row_ += group_.num_rows;
      in_group_ = 0;
    }
    if (next_group_ >= reader_.num_row_groups()) return false;
    raw_bytes_ += reader_.row_group_bytes(next_group_);
    reader_.read_row_group(next_group_++, group_);
    group_loaded_ = true;
  }
  const parquet::ColumnData& col = group_.columns[0];
  const uint64_t row = group_first_row_ + in_group_;
  if (col.is_null(in_group_)) {
    doc.text.clear();
    ++stats_.empty;
  } else {
    const std::string_view v = col.value(in_group_);
    // Some source files are not UTF-8 (Latin-1 sources in The Stack): repaired, not fatal, since
    // one such row must not stop weeks of training; the count shows in the stats.
    if (data::is_valid_utf8(v))
      doc.text.assign(v.data(), v.size());
    else
      stats_.replaced_utf8 += data::replace_invalid_utf8(v, doc.text);
    if (v.empty()) ++stats_.empty;
  }
  ++in_group_;
  doc.offset = row;
  doc.next_offset = row + 1;
  doc.line = row + 1;
  doc.ends_document = true;
  doc.source = source_;
  ++stats_.documents;
  stats_.bytes += doc.text.size();
  return true;
}

}  // namespace onebit::stream
