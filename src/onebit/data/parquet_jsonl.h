#pragma once
// Parquet → JSON lines: one JSON object per row, keys in column order, null for a null value. The
// text is what Python's json.dumps(row, ensure_ascii=False) writes, so files converted here equal
// those a pyarrow script writes byte for byte (tests/fixtures/hub-fixture/*.expected.jsonl):
//   strings (BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY)  "..." with \" \\ \n \r \t \b \f and \u00XX escapes only;
//                                                invalid UTF-8 → U+FFFD (maximal subparts, as Python's
//                                                decode(errors="replace")), counted in the result
//   INT32, INT64 (logical types ignored)        the integer
//   FLOAT, DOUBLE                                Python's repr (1.0, 1e-05, 1.5e+16, NaN, Infinity)
//   BOOLEAN                                      true / false
// INT96 (legacy timestamps) has no agreed JSON form and is refused.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/formats/parquet/file_reader.h"

namespace onebit::data {

// Appends s as a JSON string literal; returns how many invalid UTF-8 sequences were replaced.
size_t append_json_string(std::string& out, std::string_view s);
// Appends a double the way Python's repr() writes it.
void append_python_float(std::string& out, double v);
// Appends row `row` of rg as one JSON object and a newline.
size_t append_json_row(std::string& out, const std::vector<parquet::ColumnInfo>& columns,
                       const parquet::RowGroupData& rg, size_t row);

struct ParquetToJsonlResult {
  uint64_t rows = 0, row_groups = 0, bytes_written = 0, replaced_utf8 = 0;
  double seconds = 0;
};

// Converts `in` to `out` (written to a temp name and renamed when complete). columns empty = all.
ParquetToJsonlResult parquet_to_jsonl(const fs::path& in, const fs::path& out, const std::vector<std::string>& columns,
                                      bool progress);

}  // namespace onebit::data
