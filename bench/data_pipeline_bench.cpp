// Data pipeline throughput on synthetic JSONL (no external files): how fast documents are read and
// decompressed, tokenized to .tokens, and served as training batches.
//   <build>/bench/bench_data --benchmark_out=bench/results/data_pipeline.json --benchmark_out_format=json
#include <benchmark/benchmark.h>
#include <unistd.h>
#include <zstd.h>

#include "onebit/core/json_util.h"
#include "onebit/core/log.h"
#include "onebit/core/rng.h"
#include "onebit/data/byte_tokenizer.h"
#include "onebit/data/dataset.h"
#include "onebit/data/documents.h"
#include "onebit/data/tokenize_files.h"

namespace {

using namespace onebit;
using namespace onebit::data;

struct Corpus {
  fs::path dir, jsonl, zst;
  uint64_t bytes = 0;
  Corpus() {
    set_log_level(LogLevel::Warn);
    dir = fs::temp_directory_path() / cat("onebit-bench-data-", ::getpid());
    fs::create_directories(dir);
    Rng rng(1);
    std::string s;
    const char* words[] = {"the", "model", "ternary", "weights", "of", "a", "quick", "brown", "fox", "jumps",
                           "over", "lazy", "dog", "training", "tokens", "naïve", "☃", "and", "is", "to"};
    while (s.size() < (32u << 20)) {
      std::string t;
      size_t n = 50 + rng.uniform_int(400);
      for (size_t i = 0; i < n; ++i) t += std::string(words[rng.uniform_int(20)]) + (i % 17 == 16 ? ".\n" : " ");
      s += json{{"text", t}, {"id", s.size()}}.dump() + "\n";
    }
    bytes = s.size();
    jsonl = dir / "c.jsonl";
    write_file_atomic(jsonl, s);
    std::string z(ZSTD_compressBound(s.size()), '\0');
    z.resize(ZSTD_compress(z.data(), z.size(), s.data(), s.size(), 3));
    zst = dir / "c.jsonl.zst";
    write_file_atomic(zst, z);
  }
  ~Corpus() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Corpus& corpus() {
  static Corpus c;
  return c;
}

void BM_ReadJsonl(benchmark::State& st, bool zstd) {
  auto& c = corpus();
  for (auto _ : st) {
    auto r = open_documents(zstd ? c.zst : c.jsonl, ReadOptions{});
    Document d;
    uint64_t n = 0;
    while (r->next(d)) n += d.text.size();
    benchmark::DoNotOptimize(n);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * c.bytes));
}
BENCHMARK_CAPTURE(BM_ReadJsonl, plain, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_ReadJsonl, zstd, true)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_TokenizeToFile(benchmark::State& st) {
  auto& c = corpus();
  auto tok = make_byte_tokenizer();
  for (auto _ : st) {
    TokenizeOptions o;
    o.inputs = {c.zst.string()};
    o.output = c.dir / "out.tokens";
    o.progress = false;
    o.threads = static_cast<int>(st.range(0));
    benchmark::DoNotOptimize(tokenize_files(o, *tok).tokens);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * c.bytes));
}
BENCHMARK(BM_TokenizeToFile)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Batches(benchmark::State& st, bool streaming) {
  auto& c = corpus();
  auto tok = make_byte_tokenizer();
  if (!streaming && !fs::exists(c.dir / "out.tokens")) {
    TokenizeOptions o;
    o.inputs = {c.jsonl.string()};
    o.output = c.dir / "out.tokens";
    o.progress = false;
    tokenize_files(o, *tok);
  }
  DataOptions o;
  o.path = streaming ? c.zst.string() : (c.dir / "out.tokens").string();
  o.val_fraction = 0;
  Dataset ds = open_dataset(o, *tok);
  const int B = 16, T = 1024;
  std::vector<int32_t> in(B * T), tg(B * T);
  for (auto _ : st) ds.train->next_batch(B, T, in.data(), tg.data());
  st.SetItemsProcessed(st.iterations() * B * T);
  st.SetLabel("items = tokens");
}
BENCHMARK_CAPTURE(BM_Batches, tokens_file, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_Batches, jsonl_zst_stream, true)->UseRealTime();

// Opening a text file as a dataset the first time: byte-tokenize tinyshakespeare (1.1 MB) into the
// token cache and map it (was a 2 s wall-clock assertion in data_dataset_test; timing lives here).
void BM_OpenDatasetTinyShakespeare(benchmark::State& st) {
  const fs::path src = fs::path(ONEBIT_SOURCE_DIR) / "data" / "tinyshakespeare.txt";
  const fs::path cache = fs::temp_directory_path() / cat("onebit-bench-shakespeare-", ::getpid());
  auto tok = make_byte_tokenizer();
  for (auto _ : st) {
    st.PauseTiming();
    fs::remove_all(cache);
    st.ResumeTiming();
    DataOptions o;
    o.path = src.string();
    o.cache_dir = cache;
    benchmark::DoNotOptimize(open_dataset(o, *tok).train_tokens);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * fs::file_size(src)));
  fs::remove_all(cache);
}
BENCHMARK(BM_OpenDatasetTinyShakespeare)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
