#pragma once
// Decodes one column chunk (all its pages) of one row group into a ColumnData. Handles the
// dictionary page, data pages v1 and v2, optional columns (definition levels) and every codec in
// codecs.h. Every offset and length is checked against the chunk and the file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "onebit/formats/parquet/column_data.h"
#include "onebit/formats/parquet/metadata.h"

namespace onebit::parquet {

class ColumnChunkReader {
 public:
  // file[0, file_size) is the whole file; the footer starts at data_end (chunks must lie before it).
  // Decodes `num_rows` rows of `info` from `chunk` into out (cleared first). `what` names the
  // file, row group and column in errors.
  void read(const uint8_t* file, size_t data_end, const ColumnChunk& chunk, const ColumnInfo& info, int64_t num_rows,
            ColumnData& out, const std::string& what);

 private:
  // Reused from page to page and row group to row group. The dictionary's views point into pages
  // owned by the output ColumnData.
  std::vector<std::string_view> dictionary_, values_;
  std::vector<uint32_t> def_levels_;
};

}  // namespace onebit::parquet
