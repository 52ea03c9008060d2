// Tokenizer::encode is called from many threads at once (ParallelTokenizer, encode_batch), and
// every thread keeps per-thread caches (BPE word cache keyed by model instance, regex match state,
// scratch buffers). Ids must not depend on which thread encodes what, on how calls of two
// tokenizers interleave on one thread, or on one tokenizer being destroyed while others run.
// Built with -fsanitize=thread this also checks for data races.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "onebit/core/rng.h"
#include "onebit/data/hf/hf_tokenizer.h"
#include "test_util.h"

namespace onebit::data {
namespace {

std::vector<std::string> texts(uint64_t seed, int n) {
  const char* words[] = {"the", "Citizen", "naïve", "☃", "42", "it's", "Zebra", "über", "\n\n", "  ", "x", "END.",
                         "<|endoftext|>", "\xff"};
  Rng rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string s;
    int len = 1 + static_cast<int>(rng.uniform_int(60));
    for (int k = 0; k < len; ++k) {
      s += words[rng.uniform_int(14)];
      if (rng.uniform_int(3)) s += ' ';
    }
    out.push_back(s);
  }
  return out;
}

TEST(HfConcurrency, ThreadsAndInterleavedTokenizersGiveTheSingleThreadIds) {
  const fs::path dir = test::fixtures_dir();
  std::vector<std::unique_ptr<HfTokenizer>> toks;
  toks.push_back(load_hf_tokenizer(dir / "llama3" / "tokenizer.json"));
  toks.push_back(load_hf_tokenizer(dir / "llama-sp" / "tokenizer.json"));
  toks.push_back(load_hf_tokenizer(dir / "zoo" / "bert_like" / "tokenizer.json"));
  const auto docs = texts(5, 300);
  // Reference: each tokenizer alone, on this thread.
  std::vector<std::vector<std::vector<int32_t>>> want(toks.size());
  for (size_t t = 0; t < toks.size(); ++t)
    for (const auto& d : docs) want[t].push_back(toks[t]->encode(d));

  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      // Each thread walks the docs in its own order, switching tokenizer at every call so that
      // the per-thread word cache changes owner all the time.
      Rng rng(100 + static_cast<uint64_t>(w));
      for (int k = 0; k < 600; ++k) {
        size_t i = rng.uniform_int(docs.size());
        size_t t = rng.uniform_int(toks.size());
        if (toks[t]->encode(docs[i]) != want[t][i]) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// encode_batch runs on OpenMP threads (a separate test: libgomp is not instrumented, so under
// -fsanitize=thread its hand-offs show up as false races; run the others with
// --gtest_filter=-*EncodeBatch* there).
TEST(HfConcurrency, EncodeBatchGivesTheIdsOfEncode) {
  const fs::path dir = test::fixtures_dir();
  auto l3 = load_hf_tokenizer(dir / "llama3" / "tokenizer.json");
  auto sp = load_hf_tokenizer(dir / "llama-sp" / "tokenizer.json");
  const auto docs = texts(6, 300);
  std::vector<std::string_view> views(docs.begin(), docs.end());
  for (const HfTokenizer* tok : {l3.get(), sp.get()}) {
    for (int threads : {1, 2, 3}) {
      auto batch = tok->encode_batch(views, false, threads);
      ASSERT_EQ(batch.size(), docs.size());
      for (size_t i = 0; i < docs.size(); ++i) ASSERT_EQ(batch[i], tok->encode(docs[i])) << threads << " " << i;
    }
  }
}

// A tokenizer loaded after another one was destroyed must not see the old one's cached words,
// even when both were used from the same thread (a freed model's instance id is never reused).
TEST(HfConcurrency, NewTokenizerNeverSeesAFreedOnesCache) {
  const fs::path dir = test::fixtures_dir();
  const std::string text = "Zebra Citizen naïve über the END.";
  std::vector<int32_t> sp_ids;
  {
    auto sp = load_hf_tokenizer(dir / "llama-sp" / "tokenizer.json");
    sp_ids = sp->encode(text);
  }
  auto l3 = load_hf_tokenizer(dir / "llama3" / "tokenizer.json");
  auto fresh = load_hf_tokenizer(dir / "llama3" / "tokenizer.json");
  EXPECT_EQ(l3->encode(text), fresh->encode(text));
  EXPECT_NE(l3->encode(text), sp_ids);
}

}  // namespace
}  // namespace onebit::data
