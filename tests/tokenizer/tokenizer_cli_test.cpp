// `onebit tokenizer encode | decode` end to end, through the real binary.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <string>

#include "test_util.h"

#ifdef ONEBIT_BINARY
namespace onebit::data {
namespace {

struct Result {
  int status;
  std::string out;
};

// Runs the onebit binary with `args` (shell words) and returns its exit status and stdout.
Result run(const std::string& args, bool with_stderr = false) {
  std::string cmd = std::string("'") + ONEBIT_BINARY + "' " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, ""};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {status, out};
}

std::string gpt2() { return "'" + (test::gpt2_fixture_dir() / "tokenizer.json").string() + "'"; }

TEST(TokenizerCli, EncodePrintsHfIds) {
  auto r = run("tokenizer encode --tokenizer " + gpt2() + " --text \"Hello world!\"");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "15496 995 0\n");
}

TEST(TokenizerCli, ShowPiecesListsIdAndPiece) {
  auto r = run("tokenizer encode -t " + gpt2() + " --show-pieces --text \"Hi there\n\"");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "17250\tHi\n612\t there\n198\t\\n\n");
}

TEST(TokenizerCli, EncodeFromFileAndStdinDecodeRoundTrip) {
  fs::path dir = fs::temp_directory_path() / ("onebit_tok_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string text = "naïve café — 日本語 😀\n  spaces\t\ttabs <|endoftext|> end";
  write_file_atomic(dir / "in.txt", text);
  auto from_file = run("tokenizer encode -t " + gpt2() + " --file '" + (dir / "in.txt").string() + "'");
  auto from_stdin = run("tokenizer encode -t " + gpt2() + " < '" + (dir / "in.txt").string() + "'");
  EXPECT_EQ(from_file.status, 0);
  EXPECT_EQ(from_file.out, from_stdin.out);
  EXPECT_NE(from_file.out.find("50256"), std::string::npos);
  write_file_atomic(dir / "ids.txt", from_file.out);
  auto dec = run("tokenizer decode -t " + gpt2() + " < '" + (dir / "ids.txt").string() + "'");
  EXPECT_EQ(dec.status, 0);
  EXPECT_EQ(dec.out, text);
  auto skip = run("tokenizer decode -t " + gpt2() + " --skip-special < '" + (dir / "ids.txt").string() + "'");
  EXPECT_EQ(skip.out, "naïve café — 日本語 😀\n  spaces\t\ttabs  end");
  fs::remove_all(dir);
}

TEST(TokenizerCli, DecodeArgsAndByteTokenizer) {
  EXPECT_EQ(run("tokenizer decode -t " + gpt2() + " 15496 995 0").out, "Hello world!");
  EXPECT_EQ(run("tokenizer decode -t " + gpt2() + " '[15496, 995]'").out, "Hello world");
  EXPECT_EQ(run("tokenizer encode -t byte --text hi --add-special").out, "104 105\n");
  EXPECT_EQ(run("tokenizer decode -t byte 104 105 256").out, "hi<|endoftext|>");
}

TEST(TokenizerCli, AddSpecialAppliesTemplate) {
  std::string llama3 = "'" + (test::fixtures_dir() / "llama3" / "tokenizer.json").string() + "'";
  auto plain = run("tokenizer encode -t " + llama3 + " --text hello");
  auto special = run("tokenizer encode -t " + llama3 + " --text hello --add-special");
  EXPECT_EQ(special.out.substr(special.out.find(' ') + 1), plain.out);
}

TEST(TokenizerCli, BadInputFailsWithMessage) {
  EXPECT_NE(run("tokenizer decode -t " + gpt2() + " 99999999").status, 0);
  EXPECT_NE(run("tokenizer decode -t " + gpt2() + " abc").status, 0);
  EXPECT_NE(run("tokenizer encode -t /nonexistent/tokenizer.json --text x").status, 0);
  // ... each with one error line that says what is wrong.
  EXPECT_NE(run("tokenizer decode -t " + gpt2() + " 99999999", true).out.find("99999999"), std::string::npos);
  EXPECT_NE(run("tokenizer decode -t " + gpt2() + " abc", true).out.find("abc"), std::string::npos);
  EXPECT_NE(run("tokenizer encode -t /nonexistent/tokenizer.json --text x", true).out.find("/nonexistent/tokenizer.json"),
            std::string::npos);
  EXPECT_NE(run("tokenizer encode --text x").status, 0);  // --tokenizer is required
}

TEST(TokenizerCli, HelpExplainsEveryFlag) {
  auto enc = run("tokenizer encode --help").out;
  for (const char* flag : {"--tokenizer", "--text", "--file", "--show-pieces", "--add-special"})
    EXPECT_NE(enc.find(flag), std::string::npos) << flag;
  auto dec = run("tokenizer decode --help").out;
  for (const char* flag : {"--tokenizer", "--skip-special", "ids"}) EXPECT_NE(dec.find(flag), std::string::npos) << flag;
}

}  // namespace
}  // namespace onebit::data
#endif
