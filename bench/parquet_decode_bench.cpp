// Times decoding a Parquet file with formats/parquet, the way the stream uses it: open (mmap,
// footer), then every row group of the requested columns decoded into memory, one thread.
//   bench_parquet_decode FILE [COLUMN,...] [REPEATS]
// Prints one JSON object: the seconds of each repeat, rows and value bytes decoded.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/formats/parquet/file_reader.h"

int main(int argc, char** argv) {
  using namespace onebit;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [COLUMN,...] [REPEATS]\n", argv[0]);
    return 2;
  }
  std::vector<std::string> columns;
  if (argc > 2) {
    std::string s = argv[2];
    for (size_t start = 0; start <= s.size();) {
      size_t comma = std::min(s.find(',', start), s.size());
      if (comma > start) columns.push_back(s.substr(start, comma - start));
      start = comma + 1;
    }
  }
  int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
  try {
    std::vector<double> secs;
    uint64_t rows = 0, bytes = 0;
    parquet::RowGroupData rg;
    for (int r = 0; r < repeats; ++r) {
      rows = bytes = 0;
      auto t0 = std::chrono::steady_clock::now();
      parquet::FileReader reader(argv[1], columns);
      for (size_t g = 0; g < reader.num_row_groups(); ++g) {
        reader.read_row_group(g, rg);
        rows += rg.num_rows;
        for (const auto& c : rg.columns)
          for (size_t i = 0; i < c.size(); ++i) bytes += c.value(i).size();
      }
      secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("{\"seconds\": [");
    for (size_t i = 0; i < secs.size(); ++i) std::printf("%s%.6f", i ? ", " : "", secs[i]);
    std::printf("], \"rows\": %llu, \"value_bytes\": %llu}\n", static_cast<unsigned long long>(rows),
                static_cast<unsigned long long>(bytes));
  } catch (const Error& e) {
    std::fprintf(stderr, "onebit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
