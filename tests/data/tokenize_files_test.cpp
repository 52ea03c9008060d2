#include <gtest/gtest.h>

#include "compress_util.h"
#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/data/byte_tokenizer.h"
#include "onebit/data/token_file.h"
#include "onebit/data/tokenize_files.h"
#include "temp_dir.h"

namespace onebit::data {
namespace {

using testing::expect_error;
using testing::TempDir;

std::vector<int32_t> read_ids(const fs::path& p) {
  TokenFile f(p);
  std::vector<int32_t> ids(f.size());
  f.read(0, ids.size(), ids.data());
  return ids;
}

std::vector<int32_t> bytes_eos(const std::vector<std::string>& docs) {
  std::vector<int32_t> ids;
  for (const auto& d : docs) {
    for (unsigned char c : d) ids.push_back(c);
    ids.push_back(kByteEosId);
  }
  return ids;
}

TEST(TokenizeFiles, MixedInputsInOrderWithEosAfterEachDocument) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  write_file_atomic(dir / "a.txt", "Alpha text.\n");
  testing::write_zstd(dir / "b.jsonl.zst", "{\"content\": \"b1\"}\n{\"content\": \"b2 ☃\"}\n");
  testing::write_gzip(dir / "c.jsonl.gz", "{\"content\": \"c1\"}\n");
  TokenizeOptions o;
  o.inputs = {(dir / "a.txt").string(), (dir / "b.jsonl.zst").string(), (dir / "c.jsonl.gz").string()};
  o.output = dir / "out.tokens";
  o.text_field = "content";
  o.progress = false;
  TokenizeResult r = tokenize_files(o, *tok);
  EXPECT_EQ(r.documents, 4u);
  std::vector<int32_t> want = bytes_eos({"Alpha text.\n", "b1", "b2 ☃", "c1"});
  EXPECT_EQ(read_ids(o.output), want);
  EXPECT_EQ(r.tokens, want.size());
  TokenFile f(o.output);
  EXPECT_EQ(f.header().tokenizer_hash, tok->hash());
  EXPECT_EQ(f.header().vocab_size, 257u);
}

TEST(TokenizeFiles, OutputDoesNotDependOnThreadCount) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  Rng rng(9);
  std::string jsonl;
  std::vector<std::string> docs;
  for (int i = 0; i < 3000; ++i) {
    std::string t(1 + rng.uniform_int(2000), 'x');  // empty texts would be skipped
    for (auto& c : t) c = static_cast<char>('a' + rng.uniform_int(26));
    docs.push_back(t);
    jsonl += json{{"text", t}}.dump() + "\n";
  }
  write_file_atomic(dir / "d.jsonl", jsonl);
  TokenizeOptions o;
  o.inputs = {(dir / "d.jsonl").string()};
  o.progress = false;
  std::vector<int32_t> first;
  for (int threads : {1, 2, 5}) {
    o.threads = threads;
    o.output = dir / cat("t", threads, ".tokens");
    tokenize_files(o, *tok);
    auto ids = read_ids(o.output);
    if (first.empty()) first = ids;
    EXPECT_EQ(ids, first) << threads;
  }
  EXPECT_EQ(first, bytes_eos(docs));
}

TEST(TokenizeFiles, ValFractionSplitsAtADocumentBoundary) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  std::string jsonl;
  std::vector<std::string> docs;
  for (int i = 0; i < 100; ++i) {
    docs.push_back(std::string(static_cast<size_t>(10 + i % 7), static_cast<char>('a' + i % 26)));
    jsonl += json{{"text", docs.back()}}.dump() + "\n";
  }
  write_file_atomic(dir / "d.jsonl", jsonl);
  TokenizeOptions o;
  o.inputs = {(dir / "d.jsonl").string()};
  o.output = dir / "split.tokens";
  o.val_fraction = 0.2;
  o.progress = false;
  TokenizeResult r = tokenize_files(o, *tok);
  EXPECT_EQ(r.val_path, dir / "split.val.tokens");
  auto train = read_ids(dir / "split.tokens");
  auto val = read_ids(dir / "split.val.tokens");
  EXPECT_EQ(train.back(), kByteEosId);  // the split is just after a document's EOS
  std::vector<int32_t> all = train;
  all.insert(all.end(), val.begin(), val.end());
  EXPECT_EQ(all, bytes_eos(docs));
  double frac = static_cast<double>(val.size()) / static_cast<double>(all.size());
  EXPECT_NEAR(frac, 0.2, 0.01);
  EXPECT_EQ(r.val_documents, 20u);
  // No scratch file left behind.
  size_t files = 0;
  for (auto& e : fs::directory_iterator(dir.path())) files += e.path().extension() == ".tokens" ? 1 : 0;
  EXPECT_EQ(files, 2u);
  for (auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".all-"), std::string::npos) << e.path();
}

TEST(TokenizeFiles, BadInputsAreClearErrorsAndLeaveNoOutput) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  TokenizeOptions o;
  o.output = dir / "out.tokens";
  o.progress = false;
  write_file_atomic(dir / "empty.txt", "");
  o.inputs = {(dir / "empty.txt").string()};
  expect_error([&] { tokenize_files(o, *tok); }, "empty.txt", "no text found");
  write_file_atomic(dir / "bad.jsonl", "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n");
  o.inputs = {(dir / "bad.jsonl").string()};
  expect_error([&] { tokenize_files(o, *tok); }, "bad.jsonl:2: missing text field \"text\"");
  EXPECT_FALSE(fs::exists(o.output));
  o.skip_bad_lines = true;
  TokenizeResult r = tokenize_files(o, *tok);
  EXPECT_EQ(r.read.bad_lines, 1u);
  EXPECT_EQ(read_ids(o.output), bytes_eos({"ok"}));
  o.val_fraction = 0.5;
  expect_error([&] { tokenize_files(o, *tok); }, "--val-fraction needs at least 2 documents");
  o.val_fraction = 1.0;
  expect_error([&] { tokenize_files(o, *tok); }, "--val-fraction must be in [0, 1)");
  o.val_fraction = 0;
  o.inputs = {(dir / "missing.jsonl").string()};
  expect_error([&] { tokenize_files(o, *tok); }, "missing.jsonl", "no such file");
  o.inputs = {};
  expect_error([&] { tokenize_files(o, *tok); }, "no --input");
  for (auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST(TokenizeFiles, ValTokensPathNaming) {
  EXPECT_EQ(val_tokens_path("/a/b/data.tokens"), fs::path("/a/b/data.val.tokens"));
  EXPECT_EQ(val_tokens_path("out"), fs::path("out.val.tokens"));
}

}  // namespace
}  // namespace onebit::data
