#include <gtest/gtest.h>

#include "compress_util.h"
#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "onebit/data/documents.h"
#include "onebit/data/tokenizer.h"
#include "onebit/data/utf8.h"
#include "temp_dir.h"

namespace onebit::data {
namespace {

using testing::expect_error;
using testing::TempDir;

std::vector<Document> read_all(const fs::path& p, ReadOptions ro = {}, uint64_t offset = 0, uint64_t line = 1) {
  auto r = open_documents(p, ro, offset, line);
  std::vector<Document> out;
  Document d;
  while (r->next(d)) out.push_back(d);
  return out;
}

std::string make_jsonl(int n, uint64_t seed, std::vector<std::string>* texts = nullptr) {
  Rng rng(seed);
  std::string s;
  for (int i = 0; i < n; ++i) {
    std::string t = cat("doc ", i, " ");
    int len = static_cast<int>(rng.uniform_int(200));
    for (int k = 0; k < len; ++k) t += static_cast<char>('a' + rng.uniform_int(26));
    if (i % 7 == 0) t += " naïve ☃\n\"quoted\"";
    if (texts) texts->push_back(t);
    s += json{{"id", i}, {"text", t}}.dump() + "\n";
  }
  return s;
}

TEST(Utf8, ValidatesAndReplaces) {
  EXPECT_EQ(find_invalid_utf8("plain ascii text, long enough for the fast path"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("naïve ☃ 😀"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("abc\xff"), 3u);
  EXPECT_EQ(find_invalid_utf8("ab\xc3"), 2u);            // truncated sequence
  EXPECT_EQ(find_invalid_utf8("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(find_invalid_utf8("x\xed\xa0\x80"), 1u);     // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("\xf4\x90\x80\x80"), 0u);  // > U+10FFFF
  std::string out;
  EXPECT_EQ(replace_invalid_utf8("a\xffz\xe2\x98", out), 2u);
  EXPECT_EQ(out, "a\xEF\xBF\xBDz\xEF\xBF\xBD");
  // Maximal subparts, as Python's bytes.decode("utf-8", "replace") (the reader and the tokenizer
  // repair text the same way): an overlong or surrogate lead is one bad byte, and so is each
  // continuation byte after it.
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(replace_invalid_utf8("\xe0\x80\x80" "a\xf0\x9f\x98", out), 4u);
  EXPECT_EQ(out, fffd + fffd + fffd + "a" + fffd);
  EXPECT_EQ(replace_invalid_utf8("\xed\xa0\x80z", out), 3u);
  EXPECT_EQ(out, fffd + fffd + fffd + "z");
  EXPECT_EQ(replace_invalid_utf8("\xc3(\xff\xf4\x90\x80\x80!", out), 6u);
  EXPECT_EQ(out, fffd + "(" + fffd + fffd + fffd + fffd + fffd + "!");
}

TEST(Documents, JsonlPlainGzipAndZstdGiveTheSameDocumentsAndOffsets) {
  TempDir dir;
  std::vector<std::string> texts;
  std::string data = make_jsonl(300, 1, &texts);
  write_file_atomic(dir / "a.jsonl", data);
  testing::write_gzip(dir / "a.jsonl.gz", data);
  testing::write_zstd(dir / "a.jsonl.zst", data);
  for (const char* name : {"a.jsonl", "a.jsonl.gz", "a.jsonl.zst"}) {
    auto docs = read_all(dir / name);
    ASSERT_EQ(docs.size(), texts.size()) << name;
    for (size_t i = 0; i < docs.size(); ++i) {
      EXPECT_EQ(docs[i].text, texts[i]);
      EXPECT_EQ(docs[i].line, i + 1);
      // Offsets point at the line in the decompressed stream.
      std::string want = json{{"id", i}, {"text", texts[i]}}.dump() + "\n";
      EXPECT_EQ(data.substr(docs[i].offset, docs[i].next_offset - docs[i].offset), want);
    }
    // Resuming at a line start continues there, with correct line numbers.
    auto rest = read_all(dir / name, {}, docs[123].offset, docs[123].line);
    ASSERT_EQ(rest.size(), texts.size() - 123);
    EXPECT_EQ(rest[0].text, texts[123]);
    EXPECT_EQ(rest[0].line, 124u);
  }
}

TEST(Documents, JsonlBadLinesAreErrorsWithFileAndLineOrSkippedAndCounted) {
  TempDir dir;
  struct Case {
    std::string line, message;
  };
  std::vector<Case> cases = {
      {"{\"text\": \"unterminated", "malformed JSON"},
      {"[1, 2]", "not a JSON object"},
      {"{\"content\": \"x\"}", "missing text field \"text\""},
      {"{\"text\": 42}", "is not a string (got number)"},
      {"{\"text\": null}", "is not a string (got null)"},
      {"{\"text\": \"bad \xff byte\"}", "invalid UTF-8"},
      {"{\"text\": \"a\"} trailing", "malformed JSON"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    auto p = dir / cat("bad", i, ".jsonl");
    write_file_atomic(p, "{\"text\": \"ok\"}\n\n" + cases[i].line + "\n{\"text\": \"after\"}\n");
    expect_error([&] { read_all(p); }, p.string() + ":3: ", cases[i].message, "--skip-bad-lines");
    ReadOptions skip;
    skip.skip_bad_lines = true;
    auto r = open_documents(p, skip);
    Document d;
    std::vector<std::string> got;
    while (r->next(d)) got.push_back(d.text);
    EXPECT_EQ(got, (std::vector<std::string>{"ok", "after"})) << cases[i].line;
    EXPECT_EQ(r->stats().bad_lines, 1u);
    EXPECT_EQ(r->stats().empty, 1u);  // the blank line
  }
  // A byte order mark before the first line is not part of the JSON.
  auto p = dir / "bom.jsonl";
  write_file_atomic(p, "\xEF\xBB\xBF{\"text\": \"first\"}\n");
  ASSERT_EQ(read_all(p).size(), 1u);
  EXPECT_EQ(read_all(p)[0].text, "first");
  // A different field name.
  p = dir / "content.jsonl";
  write_file_atomic(p, "{\"content\": \"x\"}\n{\"content\": \"y\", \"text\": 1}");  // no final newline
  ReadOptions ro;
  ro.text_field = "content";
  auto docs = read_all(p, ro);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1].text, "y");
}

TEST(Documents, CorruptCompressedInputIsAnErrorNamingTheFile) {
  TempDir dir;
  std::string data = make_jsonl(2000, 2);
  std::string z = testing::zstd_compress(data);
  auto p = dir / "cut.jsonl.zst";
  write_file_atomic(p, z.substr(0, z.size() / 2));
  expect_error([&] { read_all(p); }, p.string(), "truncated zstd");
  std::string garbage = z;
  for (size_t i = 100; i < 140; ++i) garbage[i] ^= 0x5a;
  p = dir / "garbage.jsonl.zst";
  write_file_atomic(p, garbage);
  expect_error([&] { read_all(p); }, p.string());
  testing::write_gzip(dir / "ok.jsonl.gz", data);
  std::string gz = read_file(dir / "ok.jsonl.gz");
  p = dir / "cut.jsonl.gz";
  write_file_atomic(p, gz.substr(0, gz.size() / 2));
  expect_error([&] { read_all(p); }, p.string(), "truncated gzip");
  p = dir / "notgz.jsonl.gz";
  write_file_atomic(p, "this is not gzip at all\n");
  expect_error([&] { read_all(p); }, p.string(), "corrupt gzip");
}

TEST(Documents, PlainTextIsSplitIntoPiecesThatConcatenateToTheFile) {
  TempDir dir;
  Rng rng(3);
  std::string text;
  while (text.size() < 3'500'000) {
    if (rng.uniform_int(3) == 0) text += ' ';
    text += static_cast<char>('A' + rng.uniform_int(26));
    text += "ab cd, ☃ ef.\n";
    if (rng.uniform_int(5) == 0) text += "\n  \n";
    if (rng.uniform_int(5) == 1) text += "\n";  // ".\n\nX": no cut there
  }
  write_file_atomic(dir / "t.txt", text);
  // Without split_text (a tokenizer that is not provably piecewise) the file is one document.
  auto whole = read_all(dir / "t.txt");
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0].text, text);
  EXPECT_TRUE(whole[0].ends_document);
  ReadOptions split;
  split.split_text = true;
  auto docs = read_all(dir / "t.txt", split);
  ASSERT_GE(docs.size(), 3u);
  std::string joined;
  uint64_t line = 1;
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(docs[i].offset, joined.size());
    EXPECT_EQ(docs[i].line, line);
    EXPECT_EQ(docs[i].ends_document, i + 1 == docs.size());
    if (i > 0) {  // every cut is after '\n' and before an ASCII letter
      EXPECT_EQ(joined.back(), '\n');
      EXPECT_TRUE(std::isalpha(static_cast<unsigned char>(docs[i].text[0])));
      // ... and the '\n' follows a non-space ASCII character, never another '\n' or a space
      // (GPT-2 pre-tokenizes "\n\n" before a letter differently from "\n\n" at the end).
      const unsigned char g = static_cast<unsigned char>(joined[joined.size() - 2]);
      EXPECT_TRUE(g > 0x20 && g < 0x7F) << "cut after byte " << int(g);
      EXPECT_TRUE(is_line_start_cut(joined + docs[i].text.substr(0, 1), joined.size()));
    }
    joined += docs[i].text;
    line += std::count(docs[i].text.begin(), docs[i].text.end(), '\n');
  }
  EXPECT_EQ(joined, text);
}

TEST(Documents, PlainTextInvalidUtf8IsAnErrorWithLineOrReplaced) {
  TempDir dir;
  auto p = dir / "bad.txt";
  write_file_atomic(p, "line one\nline two\nthree \xfe here\n");
  expect_error([&] { read_all(p); }, p.string() + ":3: invalid UTF-8");
  ReadOptions skip;
  skip.skip_bad_lines = true;
  auto r = open_documents(p, skip);
  Document d;
  ASSERT_TRUE(r->next(d));
  EXPECT_EQ(d.text, "line one\nline two\nthree \xEF\xBF\xBD here\n");
  EXPECT_EQ(r->stats().replaced_utf8, 1u);
}

TEST(Documents, ExpandInputsSortsDirectoriesAndRejectsMissingOrEmpty) {
  TempDir dir;
  fs::create_directories(dir / "corpus" / "sub");
  write_file_atomic(dir / "corpus" / "b.txt", "b");
  write_file_atomic(dir / "corpus" / "a.jsonl.zst", "");
  write_file_atomic(dir / "corpus" / "sub" / "c.md", "c");
  write_file_atomic(dir / "corpus" / "ignore.bin", "x");
  auto files = expand_inputs({(dir / "corpus").string(), "-"});
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0].filename(), "a.jsonl.zst");
  EXPECT_EQ(files[1].filename(), "b.txt");
  EXPECT_EQ(files[2].filename(), "c.md");
  EXPECT_EQ(files[3], fs::path("-"));
  expect_error([&] { expand_inputs({(dir / "nope.txt").string()}); }, "nope.txt", "no such file");
  fs::create_directories(dir / "empty");
  expect_error([&] { expand_inputs({(dir / "empty").string()}); }, "empty", "no .txt");
  EXPECT_EQ(input_format_of("x.jsonl.gz"), InputFormat::Jsonl);
  EXPECT_EQ(input_format_of("x.txt.zst"), InputFormat::Text);
}

TEST(Documents, SeveralFilesInOrderAndEmptyFilesProduceNothing) {
  TempDir dir;
  write_file_atomic(dir / "1.txt", "first file\n");
  write_file_atomic(dir / "2.txt", "");
  write_file_atomic(dir / "3.jsonl", "{\"text\": \"x\"}\n{\"text\": \"\"}\n");
  auto r = open_documents(std::vector<fs::path>{dir / "1.txt", dir / "2.txt", dir / "3.jsonl"}, ReadOptions{});
  Document d;
  std::vector<std::string> got;
  while (r->next(d)) got.push_back(d.text);
  EXPECT_EQ(got, (std::vector<std::string>{"first file\n", "x"}));
  EXPECT_EQ(r->stats().documents, 2u);
  EXPECT_EQ(r->stats().empty, 2u);  // the empty file and the empty text
}

}  // namespace
}  // namespace onebit::data
