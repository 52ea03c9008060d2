// Encodes NUL-separated documents with a tokenizer.json on a given number of threads and prints one
// JSON line with the throughput; bench/tokenizer_speed.py compares it with HF `tokenizers`.
//   bench_tokenizer <tokenizer.json> <docs file> <threads> [repeats] [ids out: little-endian int32]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"
#include "onebit/data/hf/hf_tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s <tokenizer.json> <docs file (NUL-separated)> <threads> [repeats]\n", argv[0]);
    return 2;
  }
  try {
    auto tok = onebit::data::load_hf_tokenizer(argv[1]);
    std::string text = onebit::read_file(argv[2]);
    int threads = std::atoi(argv[3]);
    if (threads <= 0) threads = omp_get_max_threads();
    int repeats = argc > 4 ? std::atoi(argv[4]) : 3;
    std::vector<std::string_view> docs;
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t end = text.find('\0', pos);
      if (end == std::string::npos) end = text.size();
      docs.emplace_back(text.data() + pos, end - pos);
      pos = end + 1;
    }
    size_t bytes = text.size() - (docs.size() - 1);
    // One untimed pass, as for HF: both libraries then run with warm word caches.
    auto ids = tok->encode_batch(docs, false, threads);
    std::vector<double> secs;
    for (int r = 0; r < repeats; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      ids = tok->encode_batch(docs, false, threads);
      secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(secs.begin(), secs.end());
    double median = secs[secs.size() / 2];
    size_t n_ids = 0;
    for (const auto& d : ids) n_ids += d.size();
    if (argc > 5) {
      onebit::AtomicFileWriter out(argv[5]);
      for (const auto& d : ids) out.write(d.data(), d.size() * sizeof(int32_t));  // x86/ARM: little-endian
      out.commit();
    }
    std::printf("{\"threads\": %d, \"docs\": %zu, \"bytes\": %zu, \"ids\": %zu, \"seconds\": %.4f, "
                "\"mb_per_s\": %.3f}\n",
                threads, docs.size(), bytes, n_ids, median, bytes / median / 1e6);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
    return 1;
  }
  return 0;
}
