// `onebit tokenize` and `onebit tokenizer train` end to end, through the real binary.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>

#include "compress_util.h"
#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/data/byte_tokenizer.h"
#include "onebit/data/token_file.h"
#include "temp_dir.h"

#ifdef ONEBIT_BINARY
namespace onebit::data {
namespace {

using testing::TempDir;

struct CmdResult {
  int code;
  std::string out;  // stdout + stderr
};

CmdResult run(const std::string& args, const std::string& stdin_file = "") {
  std::string cmd = std::string(ONEBIT_BINARY) + " " + args + (stdin_file.empty() ? "" : " < " + stdin_file) + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  CmdResult r{-1, ""};
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

std::vector<int32_t> read_ids(const fs::path& p) {
  TokenFile f(p);
  std::vector<int32_t> ids(f.size());
  f.read(0, ids.size(), ids.data());
  return ids;
}

TEST(CliTokenize, HelpExplainsEveryFlag) {
  CmdResult r = run("tokenize --help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag : {"--tokenizer", "--input", "--output", "--text-field", "--val-fraction", "--skip-bad-lines",
                           "--threads"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

TEST(CliTokenize, JsonlZstWithValSplitAndStdin) {
  TempDir dir;
  std::string jsonl;
  for (int i = 0; i < 50; ++i) jsonl += json{{"content", cat("document number ", i)}}.dump() + "\n";
  testing::write_zstd(dir / "d.jsonl.zst", jsonl);
  CmdResult r = run(cat("tokenize --tokenizer byte --input ", q(dir / "d.jsonl.zst"), " --output ", q(dir / "o.tokens"),
                  " --text-field content --val-fraction 0.1"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("50 documents"), std::string::npos) << r.out;
  auto train = read_ids(dir / "o.tokens");
  auto val = read_ids(dir / "o.val.tokens");
  auto tok = make_byte_tokenizer();
  EXPECT_EQ(tok->decode(val), "document number 45<|endoftext|>document number 46<|endoftext|>document number "
                              "47<|endoftext|>document number 48<|endoftext|>document number 49<|endoftext|>");
  EXPECT_EQ(TokenFile(dir / "o.tokens").header().tokenizer_hash, tok->hash());
  EXPECT_EQ(train.size() + val.size(), jsonl.size() - 50 * std::string("{\"content\":\"\"}\n").size() + 50);
  // stdin, plain text
  write_file_atomic(dir / "in.txt", "from stdin\n");
  r = run(cat("tokenize --input - --output ", q(dir / "s.tokens")), (dir / "in.txt").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(tok->decode(read_ids(dir / "s.tokens")), "from stdin\n<|endoftext|>");
}

TEST(CliTokenize, BadInputFailsWithFileAndLine) {
  TempDir dir;
  write_file_atomic(dir / "bad.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"\n");
  CmdResult r = run(cat("tokenize --input ", q(dir / "bad.jsonl"), " --output ", q(dir / "o.tokens")));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("onebit: error: " + (dir / "bad.jsonl").string() + ":2: malformed JSON"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir / "o.tokens"));
  r = run(cat("tokenize --input ", q(dir / "bad.jsonl"), " --output ", q(dir / "o.tokens"), " --skip-bad-lines"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("skipped 1 bad lines"), std::string::npos) << r.out;
  r = run(cat("tokenize --input ", q(dir / "bad.jsonl"), " --output ", q(dir / "o.tokens"), " --tokenizer /nope.json"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("/nope.json"), std::string::npos) << r.out;
  r = run(cat("tokenize --output ", q(dir / "o.tokens")));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--input"), std::string::npos) << r.out;
}

// Every failure is exactly one "onebit: error:" line naming the file or flag, and writes nothing.
void expect_one_error_line(const CmdResult& r, const std::string& a, const std::string& b = "") {
  EXPECT_EQ(r.code, 1) << r.out;
  const size_t at = r.out.find("onebit: error: ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
  EXPECT_NE(line.find(a), std::string::npos) << line;
  EXPECT_NE(line.find(b), std::string::npos) << line;
  EXPECT_EQ(r.out.find("onebit: error: ", at + 1), std::string::npos) << r.out;
}

TEST(CliTokenize, ErrorsNameTheFileOrFlagAndLeaveNothingBehind) {
  TempDir dir;
  write_file_atomic(dir / "a.txt", "Some text.\n");
  // Output into a directory that does not exist: reported up front, naming the flag and the directory.
  CmdResult r = run(cat("tokenize -i ", q(dir / "a.txt"), " -o ", q(dir / "no" / "such" / "o.tokens")));
  expect_one_error_line(r, "--output", (dir / "no" / "such").string() + " does not exist");
  EXPECT_FALSE(fs::exists(dir / "no"));
  // Empty standard input is named as such.
  write_file_atomic(dir / "empty", "");
  r = run(cat("tokenize -i - -o ", q(dir / "o.tokens")), (dir / "empty").string());
  expect_one_error_line(r, "<stdin>: no text found");
  // A directory without usable files.
  fs::create_directories(dir / "nothing");
  write_file_atomic(dir / "nothing" / "x.bin", "x");
  r = run(cat("tokenize -i ", q(dir / "nothing"), " -o ", q(dir / "o.tokens")));
  expect_one_error_line(r, (dir / "nothing").string(), "no .txt");
  // tokenizer.json that is not JSON, not a tokenizer, or uses an unsupported component.
  write_file_atomic(dir / "notjson.json", "this is not json");
  write_file_atomic(dir / "nottok.json", "{\"a\": 1}");
  write_file_atomic(dir / "unigram.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
  for (const char* name : {"notjson.json", "nottok.json", "unigram.json"}) {
    r = run(cat("tokenize -i ", q(dir / "a.txt"), " -o ", q(dir / "o.tokens"), " -t ", q(dir / name)));
    expect_one_error_line(r, (dir / name).string());
  }
  EXPECT_NE(r.out.find("Unigram"), std::string::npos) << r.out;
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_NE(e.path().extension(), ".tokens") << "written on failure: " << e.path();
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(CliTokenizerTrain, MissingOutputDirFailsBeforeTrainingAndEmptyInputNamesIt) {
  TempDir dir;
  fs::path corpus = fs::path(ONEBIT_TEST_FIXTURES) / "data" / "bpe_corpus.txt";
  CmdResult r = run(cat("tokenizer train -i ", q(corpus), " --vocab-size 300 -o ", q(dir / "missing" / "tok.json")));
  expect_one_error_line(r, "--output", "does not exist");
  EXPECT_EQ(r.out.find("merges"), std::string::npos) << "trained before checking the output: " << r.out;
  write_file_atomic(dir / "empty.txt", "");
  r = run(cat("tokenizer train -i ", q(dir / "empty.txt"), " -o ", q(dir / "tok.json")));
  expect_one_error_line(r, (dir / "empty.txt").string() + ": no text found");
  EXPECT_FALSE(fs::exists(dir / "tok.json"));
}

TEST(CliTokenizerTrain, TrainsATokenizerThatOnebitLoadsAndUsesForTokenize) {
  TempDir dir;
  fs::path corpus = fs::path(ONEBIT_TEST_FIXTURES) / "data" / "bpe_corpus.txt";
  CmdResult r = run(cat("tokenizer train --files ", q(corpus), " --vocab-size 400 --special-tokens '<|endoftext|>' '<pad>' ",
                  "--output ", q(dir.path())));
  ASSERT_EQ(r.code, 0) << r.out;
  json j = read_json_file(dir / "tokenizer.json");
  EXPECT_EQ(j["model"]["vocab"].size(), 400u);
  EXPECT_EQ(j["added_tokens"][1]["content"], "<pad>");
  auto tok = load_tokenizer(dir.path().string());
  EXPECT_EQ(tok->vocab_size(), 400);
  std::string text = "Before we proceed any further, hear me speak.";
  EXPECT_EQ(tok->decode(tok->encode(text)), text);
  EXPECT_LT(tok->encode(text).size(), text.size() * 2 / 3);  // merges learned from the corpus compress it
  // tokenize with the trained tokenizer (a model dir) records its hash.
  r = run(cat("tokenize --tokenizer ", q(dir.path()), " --input ", q(corpus), " --output ", q(dir / "c.tokens")));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(TokenFile(dir / "c.tokens").header().tokenizer_hash, tok->hash());
  r = run(cat("tokenizer train --files ", q(corpus), " --vocab-size 100 --output ", q(dir / "x.json")));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("--vocab-size 100 is too small"), std::string::npos) << r.out;
  r = run("tokenizer train --help");
  for (const char* flag : {"--files", "--vocab-size", "--min-frequency", "--special-tokens", "--pattern", "--output"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

}  // namespace
}  // namespace onebit::data
#endif
