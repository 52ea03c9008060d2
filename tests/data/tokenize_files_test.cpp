#include <gtest/gtest.h>

#include "compress_util.h"
#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "onebit/data/byte_tokenizer.h"
#include "onebit/data/dataset.h"
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

// A text file larger than the 1 MiB piece size, full of the line endings where piecewise encoding
// can go wrong: blank lines before a letter, trailing spaces, CRLF, indentation, non-ASCII.
std::string big_text() {
  Rng rng(21);
  const char* words[] = {"the", "Citizen", "naïve", "☃", "42", "it's", "Zebra", "über", "x", "END"};
  const char* ends[] = {".\n", "\n\n", " \n", ":\n", "\r\n", "\n  ", "!\n\n\n", ",\n"};
  std::string s;
  while (s.size() < 1'300'000) {
    int n = 1 + static_cast<int>(rng.uniform_int(12));
    for (int i = 0; i < n; ++i) {
      if (i) s += ' ';
      s += words[rng.uniform_int(10)];
    }
    s += ends[rng.uniform_int(8)];
  }
  return s;
}

// Whatever the tokenizer, the .tokens of one big text file hold exactly encode(whole text) + EOS:
// a tokenizer that may not be cut (llama-sp: Metaspace prepend_scheme "first", byte_fallback BPE
// over whole segments) gets the file as one document; one that may (Llama 3, GPT-2) gets pieces.
TEST(TokenizeFiles, LargeTextFileGivesTheIdsOfTheWholeText) {
  TempDir dir;
  const std::string text = big_text();
  write_file_atomic(dir / "big.txt", text);
  const fs::path fixtures = fs::path(ONEBIT_TEST_FIXTURES) / "tokenizers";
  std::vector<std::pair<fs::path, bool>> toks = {{fixtures / "llama-sp" / "tokenizer.json", false},
                                                 {fixtures / "llama3" / "tokenizer.json", true}};
  toks.emplace_back(fixtures / "gpt2" / "tokenizer.json", true);
  for (const auto& [path, pieces] : toks) {
    SCOPED_TRACE(path.string());
    auto tok = load_tokenizer(path.string());
    ASSERT_EQ(tok->encodes_line_start_cuts_independently(), pieces);
    std::vector<int32_t> want = tok->encode(text);
    if (tok->eos_id()) want.push_back(*tok->eos_id());
    TokenizeOptions o;
    o.inputs = {(dir / "big.txt").string()};
    o.output = dir / "big.tokens";
    o.progress = false;
    o.threads = 2;
    TokenizeResult r = tokenize_files(o, *tok);
    EXPECT_EQ(r.documents, 1u);
    if (pieces) EXPECT_GE(r.read.documents, 2u) << "the file was not cut: the test would not test cutting";
    else EXPECT_EQ(r.read.documents, 1u);
    auto got = read_ids(o.output);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_TRUE(got == want);
    // The dataset's text cache goes the same way.
    fs::path cached = cached_tokens_for_text(dir / "big.txt", *tok, dir / "cache", 2);
    EXPECT_TRUE(read_ids(cached) == want);
  }
}

// A tokenizer that fails on one document: the error must still name the file and line it came from.
class FailingTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool) const override {
    if (text.find("BOOM") != std::string_view::npos) fail("tokenizer: cannot encode this");
    return inner_->encode(text);
  }
  std::string decode(std::span<const int32_t> ids, bool s) const override { return inner_->decode(ids, s); }
  int32_t vocab_size() const override { return inner_->vocab_size(); }
  std::optional<int32_t> eos_id() const override { return inner_->eos_id(); }
  std::optional<int32_t> bos_id() const override { return std::nullopt; }
  std::string id_to_piece(int32_t id) const override { return inner_->id_to_piece(id); }
  std::string to_json() const override { return inner_->to_json(); }
  uint64_t hash() const override { return inner_->hash(); }

 private:
  std::unique_ptr<Tokenizer> inner_ = make_byte_tokenizer();
};

TEST(TokenizeFiles, TokenizerErrorsNameTheFileAndLineAndLeaveNoOutput) {
  TempDir dir;
  FailingTokenizer tok;
  std::string jsonl;
  for (int i = 1; i <= 500; ++i) jsonl += json{{"text", i == 321 ? "this one goes BOOM" : cat("doc ", i)}}.dump() + "\n";
  write_file_atomic(dir / "a.jsonl", "{\"text\": \"first file\"}\n");
  write_file_atomic(dir / "b.jsonl", jsonl);
  TokenizeOptions o;
  o.inputs = {(dir / "a.jsonl").string(), (dir / "b.jsonl").string()};
  o.output = dir / "out.tokens";
  o.progress = false;
  o.threads = 3;
  expect_error([&] { tokenize_files(o, tok); }, (dir / "b.jsonl").string() + ":321: tokenizer: cannot encode this");
  EXPECT_FALSE(fs::exists(o.output));
}

TEST(TokenizeFiles, ValTokensPathNaming) {
  EXPECT_EQ(val_tokens_path("/a/b/data.tokens"), fs::path("/a/b/data.val.tokens"));
  EXPECT_EQ(val_tokens_path("out"), fs::path("out.val.tokens"));
}

}  // namespace
}  // namespace onebit::data
