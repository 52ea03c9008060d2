// generate / chat / bench through the real binary on a small trained model: the flags are
// documented, generate streams and reports speed, chat keeps a conversation and resets it, bench
// writes its table and JSON, and bad input (prompt longer than the context, a tokenizer that does
// not match the vocab, truncated weights, bad flags) is one error line, never a crash.
#include <gtest/gtest.h>

#include "cli_util.h"
#include "onebit/core/json_util.h"

using namespace onebit;
using namespace onebit::test;

namespace {

class InferCli : public TrainedRunSuite<InferCli> {
 public:
  static constexpr const char* kName = "infer";
  static constexpr size_t kTextBytes = 20000;
  static std::vector<std::string> train_args(const fs::path& out) {
    return {"train", "--data", data->string(), "--model-config", micro_config_path(), "--output-dir", out.string(),
            "--max-steps", "4", "--batch-size", "4", "--seq-len", "32", "--threads", "2", "--eval-batches", "1"};
  }

 protected:
  static RunResult with_stdin(const std::vector<std::string>& args, const std::string& input) {
    const fs::path in = *dir / "stdin.txt";
    write_file_atomic(in, input);
    return run(args, *dir, in);
  }
};

}  // namespace

TEST_F(InferCli, HelpDocumentsEveryFlag) {
  const std::vector<std::string> runtime_flags = {"--ctx-size", "--kv-type", "--lm-head", "--ternary-layout",
                                                  "--kernel", "--threads"};
  RunResult g = run({"generate", "--help"}, *dir);
  EXPECT_EQ(g.status, 0);
  for (const std::string& f : runtime_flags) EXPECT_NE(g.out.find(f), std::string::npos) << f;
  for (const char* f : {"--min-p", "--repeat-penalty", "--repeat-last-n", "--stop", "--temperature", "--top-k",
                        "--top-p", "--seed", "--max-tokens", "--prompt"})
    EXPECT_NE(g.out.find(f), std::string::npos) << f;
  RunResult c = run({"chat", "--help"}, *dir);
  EXPECT_EQ(c.status, 0);
  for (const char* f : {"--system", "--chat-template", "--min-p", "--max-tokens", "--ctx-size"})
    EXPECT_NE(c.out.find(f), std::string::npos) << f;
  RunResult b = run({"bench", "--help"}, *dir);
  EXPECT_EQ(b.status, 0);
  for (const char* f : {"--n-prompt", "--n-gen", "--threads", "--repetitions", "--json-out", "random:", "--lm-head"})
    EXPECT_NE(b.out.find(f), std::string::npos) << f;
}

TEST_F(InferCli, GenerateStreamsStopsAndReportsSpeed) {
  auto gen = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"generate", "-m", run_dir->string(), "-p", "ROMEO:", "-n", "30", "--seed", "5",
                                     "--threads", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args, *dir);
  };
  RunResult a = gen({}), b = gen({});
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.out.rfind("ROMEO:", 0), 0u);
  EXPECT_NE(a.err.find("prefill"), std::string::npos) << a.err;
  EXPECT_NE(a.err.find("tok/s"), std::string::npos) << a.err;
  // Every kernel path and both ternary layouts: the same text (greedy).
  RunResult ref = gen({"--temperature", "0", "--kernel", "scalar"});
  ASSERT_EQ(ref.status, 0) << ref.err;
  RunResult packed16 = gen({"--temperature", "0", "--ternary-layout", "1.6bit", "--kernel", "scalar"});
  EXPECT_EQ(packed16.out, ref.out);
  // The smaller cache and head run from the command line (their accuracy: tests/infer/runtime_test.cpp).
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--kv-type", "int8"}, {"--lm-head", "q6"}, {"--lm-head", "int8"}}) {
    RunResult small = gen({flag, value});
    EXPECT_EQ(small.status, 0) << flag << " " << value << ": " << small.err;
    EXPECT_EQ(small.out.rfind("ROMEO:", 0), 0u) << flag << " " << value;
  }
  // A stop string cuts the text before it: take one from the sampled text.
  const std::string body = a.out.substr(6);
  ASSERT_GT(body.size(), 6u) << a.out;
  {
    const std::string stop = body.substr(3, 2);
    RunResult s = gen({"--stop", stop});
    ASSERT_EQ(s.status, 0) << s.err;
    EXPECT_EQ(s.out, "ROMEO:" + body.substr(0, body.find(stop)) + "\n");
    EXPECT_NE(s.err.find("stop string"), std::string::npos) << s.err;
  }
  // The context fills: generation stops with a note, not an error.
  RunResult full = run({"generate", "-m", run_dir->string(), "-p", "ROMEO:", "-n", "40", "--ctx-size", "12"}, *dir);
  EXPECT_EQ(full.status, 0) << full.err;
  EXPECT_NE(full.err.find("context of 12 tokens is full"), std::string::npos) << full.err;
}

TEST_F(InferCli, BadInputIsOneErrorLine) {
  const std::string m = run_dir->string();
  const std::string long_prompt(200, 'x');
  expect_error_leaving({"generate", "-m", m, "-p", long_prompt, "--ctx-size", "16"}, *dir, "--ctx-size", *run_dir);
  expect_error_leaving({"generate", "-m", m, "-p", "x", "--ctx-size", "100000"}, *dir, "max_position_embeddings",
                       *run_dir);
  const fs::path gpt2 = fs::path(ONEBIT_TEST_FIXTURES) / "tokenizers" / "gpt2" / "tokenizer.json";
  expect_error_leaving({"generate", "-m", m, "-p", "x", "--tokenizer", gpt2.string()}, *dir, "vocab_size", *run_dir);
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--min-p", "1"}, {"--repeat-penalty", "0"}, {"--kv-type", "q4"}, {"--lm-head", "f8"},
           {"--ternary-layout", "3bit"}, {"--kernel", "sse9"}, {"--repeat-last-n", "-2"}})
    expect_error_leaving({"generate", "-m", m, "-p", "x", flag, value}, *dir, flag, *run_dir);
  // Truncated weights: the error names the file.
  const fs::path broken = copy_dir_fresh(*run_dir, *dir / "broken");
  const std::string bytes = read_file(broken / "model.safetensors");
  write_file_atomic(broken / "model.safetensors", bytes.substr(0, bytes.size() / 2));
  expect_error_leaving({"generate", "-m", broken.string(), "-p", "x"}, *dir, "model.safetensors", broken);
  expect_error_leaving({"bench", "-m", broken.string(), "-p", "4", "-n", "1"}, *dir, "model.safetensors", broken);
  expect_error_leaving({"bench", "-m", m, "-p", "500", "-n", "1"}, *dir, "--ctx-size", *run_dir);
  expect_error_leaving({"bench", "-m", m, "-t", "0"}, *dir, "-t/--threads", *run_dir);
  expect_error_leaving({"bench", "-m", "random:no-such-preset"}, *dir, "no-such-preset", *run_dir);
}

TEST_F(InferCli, ChatKeepsAConversationAndResets) {
  RunResult r = with_stdin({"chat", "-m", run_dir->string(), "-n", "8", "--seed", "2", "--threads", "2"},
                           "hello\nhow are you\n/reset\nagain\n/exit\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("plain template"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("(conversation reset)"), std::string::npos) << r.out;
  // Four prompts were shown (three turns and the one /exit answered).
  size_t prompts = 0;
  for (size_t at = r.out.find("> "); at != std::string::npos; at = r.out.find("> ", at + 2)) ++prompts;
  EXPECT_GE(prompts, 4u) << r.out;
  // A conversation that outgrows the context says so and keeps running.
  RunResult full = with_stdin({"chat", "-m", run_dir->string(), "-n", "8", "--ctx-size", "24", "--threads", "2"},
                              "hello there\nand more text than fits\n/exit\n");
  EXPECT_EQ(full.status, 0) << full.err;
  EXPECT_NE(full.out.find("/reset to start a new conversation"), std::string::npos) << full.out;
}

TEST_F(InferCli, BenchWritesTheTableAndJson) {
  const fs::path out = *dir / "bench.json";
  RunResult r = run({"bench", "-m", run_dir->string(), "-p", "16", "-n", "8", "-t", "1,2", "-r", "1", "--json-out",
                     out.string()},
                    *dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("pp16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tg8"), std::string::npos) << r.out;
  const json j = read_json_file(out);
  ASSERT_EQ(j.at("rows").size(), 4u);
  for (const auto& row : j.at("rows")) {
    EXPECT_GT(row.at("tokens_per_s").get<double>(), 0.0);
    if (row.at("test") == "tg8") {
      EXPECT_GT(row.at("bandwidth_fraction").get<double>(), 0.0);
    }
  }
  EXPECT_GT(j.at("weight_bytes_per_token").get<double>(), 0.0);
  EXPECT_FALSE(j.at("cpu").get<std::string>().empty());
  // The auto prefill chunk is bounded by the context bench sizes (16 tokens here).
  for (const auto& row : j.at("rows"))
    if (row.at("test") == "pp16") {
      EXPECT_EQ(row.at("ubatch").get<int>(), 16) << row.dump();
    }
}

// --ubatch-size splits the prompt into forward passes of that many tokens, and ONEBIT_INFER_PROFILE
// counts them: pp16 at 5 tokens a pass is 4 passes per run (5+5+5+1; the warm-up's and the timed one),
// tg8 is 4 warm-up and 8 timed one-token calls; every part of the forward appears in the table.
TEST_F(InferCli, BenchUbatchAndProfileCountThePasses) {
  const fs::path out = *dir / "bench-ub.json";
  ProcessIo io(*dir / "stdout.txt", *dir / "stderr.txt");
  io.env["ONEBIT_INFER_PROFILE"] = "1";
  RunResult r = run_process(onebit_argv({"bench", "-m", run_dir->string(), "-p", "16", "-n", "8", "-t", "1", "-r",
                                         "1", "--ubatch-size", "5", "--json-out", out.string()}),
                            io);
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = read_json_file(out);
  EXPECT_EQ(j.at("ubatch_size").get<int>(), 5);
  for (const auto& row : j.at("rows"))
    if (row.at("test") == "pp16") {
      EXPECT_EQ(row.at("ubatch").get<int>(), 5) << row.dump();
    }
  EXPECT_NE(r.err.find("ONEBIT_INFER_PROFILE decode: 12 passes"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ONEBIT_INFER_PROFILE prefill: 8 passes"), std::string::npos) << r.err;
  for (const char* part : {"embedding", "int8 act quant", "qkv linear", "attention", "o linear", "gate/up linear",
                           "down linear", "lm head"})
    EXPECT_NE(r.err.find(part), std::string::npos) << part << "\n" << r.err;
  RunResult bad = run({"bench", "-m", run_dir->string(), "--ubatch-size", "9000"}, *dir);
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--ubatch-size"), std::string::npos) << bad.err;
}

// A llama.cpp GGUF file (written by llama.cpp's own converter) runs directly: generate gives the
// same greedy text as the model dir `onebit import gguf` makes of it, chat and bench run on it, and
// a file without a usable tokenizer or a truncated file is one error line.
TEST_F(InferCli, GgufFilesRunInGenerateChatAndBench) {
  const fs::path fixtures = fs::path(ONEBIT_TEST_FIXTURES) / "gguf";
  const std::string tok = (fs::path(ONEBIT_TEST_FIXTURES) / "data" / "byte_tokenizer.json").string();
  for (const std::string type : {"tq2_0", "tq1_0"}) {
    SCOPED_TRACE(type);
    const std::string gguf = (fixtures / cat("llamacpp-bitnet-", type, ".gguf")).string();
    const fs::path imported = *dir / cat("imported-", type);
    RunResult imp = run({"import", "gguf", gguf, imported.string(), "--tokenizer", tok}, *dir);
    ASSERT_EQ(imp.status, 0) << imp.err;
    auto gen = [&](const std::string& model) {
      return run({"generate", "-m", model, "--tokenizer", tok, "-p", "The ", "-n", "24", "--temperature", "0",
                  "--threads", "2"},
                 *dir);
    };
    RunResult from_file = gen(gguf), from_dir = gen(imported.string());
    ASSERT_EQ(from_file.status, 0) << from_file.err;
    ASSERT_EQ(from_dir.status, 0) << from_dir.err;
    EXPECT_EQ(from_file.out, from_dir.out);
    EXPECT_GT(from_file.out.size(), 4u + 1u) << from_file.out;  // the prompt, tokens, newline
    RunResult chat = with_stdin({"chat", "-m", gguf, "--tokenizer", tok, "-n", "4", "--threads", "2"}, "hi\n/exit\n");
    EXPECT_EQ(chat.status, 0) << chat.err;
    EXPECT_NE(chat.err.find("plain template"), std::string::npos) << chat.err;
    const fs::path out = *dir / cat("bench-", type, ".json");
    RunResult bench = run({"bench", "-m", gguf, "-p", "8", "-n", "4", "-r", "1", "--json-out", out.string()}, *dir);
    ASSERT_EQ(bench.status, 0) << bench.err;
    EXPECT_EQ(read_json_file(out).at("rows").size(), 2u);
  }
  const std::string gguf = (fixtures / "llamacpp-bitnet-tq2_0.gguf").string();
  // Its vocabulary is SentencePiece, which onebit does not rebuild: without --tokenizer, one line.
  expect_error_leaving({"generate", "-m", gguf, "-p", "x"}, *dir, "--tokenizer", *run_dir);
  const fs::path cut = *dir / "cut.gguf";
  const std::string bytes = read_file(gguf);
  write_file_atomic(cut, bytes.substr(0, bytes.size() / 3));
  expect_error_leaving({"generate", "-m", cut.string(), "--tokenizer", tok, "-p", "x"}, *dir, "cut.gguf", *run_dir);
  expect_error_leaving({"bench", "-m", (*dir / "missing.gguf").string()}, *dir, "missing.gguf", *run_dir);
}
