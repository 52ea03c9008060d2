#include <gtest/gtest.h>

#include "compress_util.h"
#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/data/byte_tokenizer.h"
#include "onebit/data/dataset.h"
#include "onebit/data/jsonl_stream.h"
#include "batch_util.h"
#include "temp_dir.h"

namespace onebit::data {
namespace {

using testing::expect_error;
using testing::TempDir;

std::string make_jsonl(int n, uint64_t seed, std::vector<std::string>& texts) {
  Rng rng(seed);
  std::string s;
  for (int i = 0; i < n; ++i) {
    std::string t = cat("<doc ", i, ">");
    int len = static_cast<int>(rng.uniform_int(300));
    for (int k = 0; k < len; ++k) t += static_cast<char>('a' + rng.uniform_int(26));
    texts.push_back(t);
    s += json{{"text", t}, {"meta", i}}.dump() + "\n";
    if (i % 10 == 3) s += "\n";  // blank lines are skipped
  }
  return s;
}

using testing::Batch;
using testing::draw;

std::vector<int32_t> stream_of(const std::vector<std::string>& texts, size_t first) {
  std::vector<int32_t> ids;
  for (size_t i = first; i < texts.size(); ++i) {
    for (unsigned char c : texts[i]) ids.push_back(c);
    ids.push_back(kByteEosId);
  }
  return ids;
}

// Writes `data` to `p` compressed as its name says (.jsonl.zst, .jsonl.gz, else plain); returns p.
fs::path write_as(const fs::path& p, const std::string& data) {
  const std::string name = p.filename().string();
  if (name.ends_with(".zst"))
    testing::write_zstd(p, data);
  else if (name.ends_with(".gz"))
    testing::write_gzip(p, data);
  else
    write_file_atomic(p, data);
  return p;
}

class JsonlStream : public ::testing::TestWithParam<const char*> {};

TEST_P(JsonlStream, PacksDocumentsWithEosAndLoopsOverEpochs) {
  TempDir dir;
  std::vector<std::string> texts;
  std::string data = make_jsonl(60, 1, texts);
  const fs::path p = write_as(dir / (std::string("d") + GetParam()), data);
  auto tok = make_byte_tokenizer();
  DataOptions o;
  o.path = p.string();
  o.val_documents = 5;
  o.threads = 3;
  Dataset ds = open_dataset(o, *tok);
  ASSERT_TRUE(ds.streaming);
  ASSERT_TRUE(ds.val);
  EXPECT_EQ(ds.val->tokens(), stream_of({texts.begin(), texts.begin() + 5}, 0).size());
  // Train: documents 5.. back to back, rows at stride T, looping at the end of the file.
  std::vector<int32_t> one_epoch = stream_of(texts, 5);
  const int B = 3, T = 37;
  std::vector<int32_t> expected;
  while (expected.size() < 3 * one_epoch.size() + 1000) expected.insert(expected.end(), one_epoch.begin(), one_epoch.end());
  size_t pos = 0;
  auto* src = dynamic_cast<JsonlStreamSource*>(ds.train.get());
  ASSERT_NE(src, nullptr);
  while (pos < 2 * one_epoch.size() + 500) {
    Batch b = draw(*ds.train, B, T);
    for (int r = 0; r < B; ++r) {
      for (int t = 0; t < T; ++t) {
        ASSERT_EQ(b.in[static_cast<size_t>(r * T + t)], expected[pos + static_cast<size_t>(t)]) << "pos " << pos;
        ASSERT_EQ(b.tg[static_cast<size_t>(r * T + t)], expected[pos + static_cast<size_t>(t) + 1]);
      }
      pos += T;
    }
  }
  EXPECT_EQ(src->epoch(), 2u);
}

TEST_P(JsonlStream, StateRestoreContinuesAtTheSameToken) {
  TempDir dir;
  std::vector<std::string> texts;
  std::string data = make_jsonl(200, 2, texts);
  const fs::path p = write_as(dir / (std::string("d") + GetParam()), data);
  auto tok = make_byte_tokenizer();
  DataOptions o;
  o.path = p.string();
  o.val_fraction = 0.1;
  o.threads = 2;
  const int B = 4, T = 64;
  // Several save points: early, mid-document, and after an epoch wrap.
  for (int n : {0, 3, 17, 150}) {
    Dataset a = open_dataset(o, *tok);
    for (int i = 0; i < n; ++i) draw(*a.train, B, T);
    json st = json::parse(a.train->state().dump());
    std::vector<Batch> want;
    for (int i = 0; i < 12; ++i) want.push_back(draw(*a.train, B, T));
    o.threads = 1 + n % 3;  // a different thread count must not matter
    Dataset b = open_dataset(o, *tok);
    b.train->restore(st);
    for (int i = 0; i < 12; ++i) ASSERT_EQ(draw(*b.train, B, T), want[static_cast<size_t>(i)]) << "n=" << n << " i=" << i;
    EXPECT_EQ(json::parse(b.train->state().dump()), a.train->state());
  }
}

#ifdef ONEBIT_HAVE_HF_TOKENIZER
TEST(JsonlStreamBpe, RealBpeTokenizerGivesTheSequentialTokenStreamWhateverTheThreads) {
  TempDir dir;
  std::vector<std::string> texts;
  std::string data = make_jsonl(120, 4, texts);
  testing::write_zstd(dir / "d.jsonl.zst", data);
  auto tok = load_tokenizer((fs::path(ONEBIT_TEST_FIXTURES) / "data" / "bpe_trained_gpt2.json").string());
  ASSERT_EQ(tok->eos_id(), std::optional<int32_t>(0));
  std::vector<int32_t> expected;  // documents 10.. encoded one by one, EOS after each
  for (size_t i = 10; i < texts.size(); ++i) {
    auto ids = tok->encode(texts[i]);
    expected.insert(expected.end(), ids.begin(), ids.end());
    expected.push_back(0);
  }
  const int B = 2, T = 50;
  for (int threads : {1, 2, 4}) {
    DataOptions o;
    o.path = (dir / "d.jsonl.zst").string();
    o.val_documents = 10;
    o.threads = threads;
    Dataset ds = open_dataset(o, *tok);
    size_t pos = 0;
    while (pos + B * T + 1 < expected.size()) {
      Batch b = draw(*ds.train, B, T);
      for (int r = 0; r < B; ++r, pos += T)
        for (int t = 0; t < T; ++t)
          ASSERT_EQ(b.in[static_cast<size_t>(r * T + t)], expected[pos + static_cast<size_t>(t)]) << threads;
    }
  }
}
#endif

INSTANTIATE_TEST_SUITE_P(Formats, JsonlStream, ::testing::Values(".jsonl", ".jsonl.zst", ".jsonl.gz"));

TEST(JsonlStreamErrors, HoldOutAndRestoreMismatchesAreClearErrors) {
  TempDir dir;
  std::vector<std::string> texts;
  write_file_atomic(dir / "d.jsonl", make_jsonl(10, 3, texts));
  auto tok = make_byte_tokenizer();
  DataOptions o;
  o.path = (dir / "d.jsonl").string();
  o.val_documents = 10;
  Dataset all_val = open_dataset(o, *tok);
  expect_error([&] { draw(*all_val.train, 1, 8); }, "no training documents");
  o.val_documents = 11;
  expect_error([&] { open_dataset(o, *tok); }, "--val-documents 11", "only 10 documents");
  o.val_documents = 2;
  Dataset a = open_dataset(o, *tok);
  draw(*a.train, 2, 50);
  json st = a.train->state();
  o.val_documents = 3;
  Dataset b = open_dataset(o, *tok);
  expect_error([&] { b.train->restore(st); }, "validation hold-out changed");
  json bad = st;
  bad["tokenizer"] = "0000000000000000";
  o.val_documents = 2;
  Dataset c = open_dataset(o, *tok);
  expect_error([&] { c.train->restore(bad); }, "tokenizer hash");
  // The file changed under a mid-document state.
  bad = st;
  bad["doc_tokens"] = 1;
  bad["skip"] = 1;
  expect_error([&] { c.train->restore(bad); }, "changed since the checkpoint");
  // A malformed line is reported with file:line from the background reader.
  write_file_atomic(dir / "bad.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"fine\"}\n{\"text\": oops}\n");
  o.path = (dir / "bad.jsonl").string();
  o.val_documents = 1;
  Dataset e = open_dataset(o, *tok);
  expect_error([&] { draw(*e.train, 1, 8); }, "bad.jsonl:3: malformed JSON");
  o.skip_bad_lines = true;
  Dataset f = open_dataset(o, *tok);
  Batch fb = draw(*f.train, 1, 8);
  EXPECT_EQ(tok->decode(fb.in), "fine<|endoftext|>fin");
}

}  // namespace
}  // namespace onebit::data
