// onebit parquet-to-jsonl: a Parquet file → JSON lines (one object per row), with our own reader
// (formats/parquet). The conversion stack-stream does before tokenizing, usable on its own.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "onebit/core/error.h"
#include "onebit/data/parquet_jsonl.h"

namespace onebit::cli {

namespace {

struct ParquetToJsonlArgs {
  std::string input, output, columns;
};

std::vector<std::string> split_columns(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    std::string name = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (name.empty()) fail("--columns: empty column name in \"", printable(s), "\"");
    // One key per column in a JSON object.
    if (std::find(out.begin(), out.end(), name) != out.end()) fail("--columns: \"", printable(name), "\" is given twice");
    out.push_back(name);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

void run_parquet_to_jsonl(const ParquetToJsonlArgs& a) {
  data::ParquetToJsonlResult r = data::parquet_to_jsonl(a.input, a.output, split_columns(a.columns), true);
  std::printf("wrote %s: %llu rows from %llu row groups, %.1f MB in %.2f s\n", a.output.c_str(),
              static_cast<unsigned long long>(r.rows), static_cast<unsigned long long>(r.row_groups),
              static_cast<double>(r.bytes_written) / 1e6, r.seconds);
  if (r.replaced_utf8)
    std::printf("replaced %llu invalid UTF-8 sequences with U+FFFD\n", static_cast<unsigned long long>(r.replaced_utf8));
}

}  // namespace

void add_parquet_to_jsonl_command(CLI::App& app) {
  auto args = std::make_shared<ParquetToJsonlArgs>();
  CLI::App* cmd = app.add_subcommand(
      "parquet-to-jsonl",
      "Convert a Parquet file to JSON lines: one object per row, keys in column order, null for a null\n"
      "value, written as Python's json.dumps(row, ensure_ascii=False) would. Reads one row group at a\n"
      "time; the output is written to a temp name and renamed when complete.");
  cmd->add_option("input", args->input, "input .parquet file")->required()->check(CLI::ExistingFile);
  cmd->add_option("output", args->output, "output .jsonl file")->required();
  cmd->add_option("--columns", args->columns, "comma-separated top-level columns to keep, in this order (default: all)");
  cmd->callback([args] { run_parquet_to_jsonl(*args); });
}

}  // namespace onebit::cli
