// `onebit eval` and `onebit generate` through the real binary: a checkpoint's eval equals the eval
// the trainer logged at that step (its phase and k by default), text is tokenized exactly as
// training's token cache (end-of-text included), weights are checked against config.json before
// the model is allocated, and flags out of range are one-line errors naming the flag.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "cli_util.h"
#include "onebit/core/json_util.h"

using namespace onebit;
using namespace onebit::test;

namespace {

const std::string kMicro = micro_config_path();

// Steps 1-3 full precision, 4-7 soft (k rising from 2), 8-9 hard; a checkpoint and a 2-batch eval
// after every step. trainer_state.json records the phase of the step just trained, which is the
// phase the eval at that step ran in.
class Eval : public TrainedRunSuite<Eval> {
 public:
  static constexpr const char* kName = "eval";
  static constexpr size_t kTextBytes = 20000;
  static std::vector<std::string> train_args(const fs::path& out) {
    return {"train", "--data", data->string(), "--model-config", kMicro, "--output-dir", out.string(),
            "--max-steps", "9", "--save-every", "1", "--keep-checkpoints", "0", "--eval-every", "1",
            "--eval-batches", "2", "--batch-size", "4", "--seq-len", "32", "--threads", "2",
            "--quant-warmup-steps", "3", "--quant-anneal-steps", "4"};
  }

 protected:
  static fs::path checkpoint(int step) {
    char name[32];
    std::snprintf(name, sizeof name, "step-%06d", step);
    return *run_dir / "checkpoints" / name;
  }
  // The val line metrics.jsonl holds for `step`.
  static json logged_eval(int step) {
    std::istringstream in(read_file(*run_dir / "metrics.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      json j = json::parse(line);
      if (j.contains("val_loss") && j["step"] == step) return j;
    }
    ADD_FAILURE() << "no eval logged at step " << step;
    return json::object();
  }
  // eval --json with the trainer's eval settings (held-out split, batch, window, batches, threads).
  static json eval_json(const fs::path& model, std::vector<std::string> extra) {
    std::vector<std::string> args = {"eval",         "--model",      model.string(), "--data", data->string(),
                                     "--split",      "val",          "--batch-size", "4",      "--seq-len",
                                     "32",           "--max-batches", "2",           "--threads", "2",
                                     "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = run(args, *dir);
    EXPECT_EQ(r.status, 0) << r.err;
    return r.status == 0 ? json::parse(r.out) : json::object();
  }
  static void expect_error(const std::vector<std::string>& args, const std::string& needle) {
    expect_one_error_line(run(args, *dir), needle);
  }
};

}  // namespace

TEST_F(Eval, CheckpointEvalEqualsTheEvalTheTrainerLogged) {
  const struct {
    int step;
    const char* phase;
  } cases[] = {{2, "fp"}, {5, "soft"}, {8, "hard"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.phase);
    const json state = read_json_file(checkpoint(c.step) / "trainer_state.json");
    ASSERT_EQ(state["quant"]["phase"], c.phase);
    const json logged = logged_eval(c.step);
    const json by_default = eval_json(checkpoint(c.step), {});
    EXPECT_EQ(by_default["phase"], c.phase);
    EXPECT_EQ(by_default["tokens"], logged["val_tokens"]);
    EXPECT_DOUBLE_EQ(by_default["loss"].get<double>(), logged["val_loss"].get<double>());
    EXPECT_DOUBLE_EQ(by_default["bits_per_byte"].get<double>(), logged["val_bpb"].get<double>());
    // Naming the checkpoint's own phase changes nothing (soft takes the checkpoint's k) ...
    const json named = eval_json(checkpoint(c.step), {"--phase", c.phase});
    EXPECT_EQ(named["loss"], by_default["loss"]);
    EXPECT_EQ(named["k"], state["quant"]["k"]);
    // ... and every other phase scores the same weights differently, so the default is what matters.
    for (const std::string other : {"fp", "hard"}) {
      if (other == c.phase) continue;
      EXPECT_NE(eval_json(checkpoint(c.step), {"--phase", other})["loss"], by_default["loss"]) << other;
    }
  }
  // A soft k other than the checkpoint's is a different model too.
  const json k5 = eval_json(checkpoint(5), {"--phase", "soft", "--quant-k", "50"});
  EXPECT_EQ(k5["k"], 50.0);
  EXPECT_NE(k5["loss"], logged_eval(5)["val_loss"]);
  // The final model dir has no trainer_state.json: it is evaluated as deployed, hard.
  ASSERT_FALSE(fs::exists(*run_dir / "trainer_state.json"));
  const json final_default = eval_json(*run_dir, {});
  EXPECT_EQ(final_default["phase"], "hard");
  EXPECT_EQ(final_default["loss"], eval_json(*run_dir, {"--phase", "hard"})["loss"]);
}

TEST_F(Eval, ABadPhaseInTrainerStateIsAnErrorUnlessPhaseIsGiven) {
  const fs::path copy = *dir / "odd-state";
  fs::remove_all(copy);
  fs::copy(checkpoint(5), copy, fs::copy_options::recursive);
  json state = read_json_file(copy / "trainer_state.json");
  state["quant"]["phase"] = "half";
  write_json_atomic(copy / "trainer_state.json", state);
  expect_error({"eval", "--model", copy.string(), "--text", "hello"}, "trainer_state.json: quant.phase");
  EXPECT_EQ(eval_json(copy, {"--phase", "hard"})["loss"], eval_json(checkpoint(5), {"--phase", "hard"})["loss"]);
  state.erase("quant");
  write_json_atomic(copy / "trainer_state.json", state);
  expect_error({"eval", "--model", copy.string(), "--text", "hello"}, "missing key \"quant\"");
  // Soft without --quant-k looks for the checkpoint's k, and says why there is none.
  expect_error({"eval", "--model", copy.string(), "--text", "hello", "--phase", "soft"}, "missing key \"quant\"");
  EXPECT_EQ(eval_json(copy, {"--phase", "soft", "--quant-k", "5"})["phase"], "soft");
}

TEST_F(Eval, TextIsTokenizedLikeTrainingsTokenCache) {
  // Training tokenized the text into <XDG_CACHE_HOME>/onebit/tokens (cli_util points it at dir/cache).
  std::vector<fs::path> cached;
  for (const auto& e : fs::directory_iterator(*dir / "cache" / "onebit" / "tokens"))
    if (e.path().extension() == ".tokens") cached.push_back(e.path());
  ASSERT_EQ(cached.size(), 1u);
  auto eval_all = [&](const std::vector<std::string>& input) {
    std::vector<std::string> args = {"eval", "--model", run_dir->string(), "--json", "--seq-len", "32", "--threads", "2"};
    args.insert(args.end(), input.begin(), input.end());
    RunResult r = run(args, *dir);
    EXPECT_EQ(r.status, 0) << r.err;
    return r.status == 0 ? json::parse(r.out) : json::object();
  };
  const json from_text = eval_all({"--data", data->string()});
  const json from_cache = eval_all({"--data", cached[0].string()});
  EXPECT_EQ(from_text, from_cache);
  // Byte tokenizer: one token per byte plus the end-of-text token after the file; every token but
  // the first is a target, so targets = bytes + 1 - 1, and the end-of-text target decodes to 0 bytes.
  const uint64_t file_bytes = fs::file_size(*data);
  EXPECT_EQ(from_text["tokens"].get<uint64_t>(), file_bytes);
  EXPECT_EQ(from_text["bytes"].get<uint64_t>(), file_bytes - 1);
  // --text is one document too: the same as a text file holding the string.
  const std::string line = "ROMEO: But soft, what light through yonder window breaks?";
  const fs::path small = *dir / "line.txt";
  write_file_atomic(small, line);
  EXPECT_EQ(eval_all({"--text", line}), eval_all({"--data", small.string()}));
}

TEST_F(Eval, WeightsAreCheckedAgainstConfigBeforeTheModelIsAllocated) {
  // Runs a command that must fail with `needle` in its one error line, and returns its peak RSS in
  // KiB. The child's address space is capped (the soft limit is inherited at fork and restored here
  // at once), so a regression fails fast with bad_alloc instead of filling a shared machine.
  auto peak_rss_of_failing = [&](const std::vector<std::string>& args, const std::string& needle) -> long {
    const fs::path out = *dir / "capped.out", err = *dir / "capped.err";
    struct rlimit saved {};
    ::getrlimit(RLIMIT_AS, &saved);
    struct rlimit capped = saved;
    capped.rlim_cur = std::min<rlim_t>(saved.rlim_max, rlim_t(4) << 30);
    ::setrlimit(RLIMIT_AS, &capped);
    const pid_t pid = spawn(args, out, err, *dir / "cache");
    ::setrlimit(RLIMIT_AS, &saved);
    int st = 0;
    struct rusage ru {};
    EXPECT_EQ(::wait4(pid, &st, 0, &ru), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << args[0];
    std::string msg = read_file(err);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "more than one line: " << msg;
    EXPECT_EQ(msg.rfind("onebit: error: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "expected \"" << needle << "\" in: " << msg;
    return ru.ru_maxrss;  // KiB
  };
  // The micro model's weights with a config.json for a model of about 45M parameters: built first,
  // it takes 1.3 GB (weights and gradients) before finding that nothing fits.
  const fs::path big = *dir / "big-config";
  fs::remove_all(big);
  fs::create_directories(big);
  for (const char* f : {"model.safetensors", "tokenizer.json"}) fs::copy_file(*run_dir / f, big / f);
  json cfg = read_json_file(*run_dir / "config.json");
  cfg["hidden_size"] = 1024;
  cfg["num_hidden_layers"] = 4;
  cfg["intermediate_size"] = 4096;
  cfg["num_attention_heads"] = 8;
  cfg["num_key_value_heads"] = 8;
  cfg["vocab_size"] = 32000;
  write_json_atomic(big / "config.json", cfg);
  const std::string embed_error =
      "model.safetensors: tensor \"model.embed_tokens.weight\" has shape [257, 32] but the model config needs [32000, "
      "1024]";
  // The bound is what a command failing at once holds (the executable and its libraries: the CUDA
  // runtime and cuBLASLt where onebit is built with CUDA) plus 150 MB, far below the 1.3 GB the model
  // would take. --threads 2: the cap must not depend on how many cores the machine has.
  const long base = peak_rss_of_failing({"eval", "--model", (*dir / "no-such-model").string(), "--text", "hello",
                                         "--threads", "2"},
                                        "no-such-model");
  const long cap = base + 150L * 1024;
  EXPECT_LT(peak_rss_of_failing({"eval", "--model", big.string(), "--text", "hello", "--threads", "2"}, embed_error),
            cap);
  EXPECT_LT(
      peak_rss_of_failing({"generate", "--model", big.string(), "--prompt", "hello", "--threads", "2"}, embed_error),
      cap);
  // A layer count the file cannot hold is refused before the layout (one entry per tensor) is built.
  cfg = read_json_file(*run_dir / "config.json");
  cfg["num_hidden_layers"] = 2000000000;
  write_json_atomic(big / "config.json", cfg);
  EXPECT_LT(peak_rss_of_failing({"eval", "--model", big.string(), "--text", "hello", "--threads", "2"},
                                "\"num_hidden_layers\" is 2000000000"),
            cap);
  // Same size, other shape: the error names the tensor.
  cfg = read_json_file(*run_dir / "config.json");
  cfg["intermediate_size"] = cfg["intermediate_size"].get<int>() + 2;
  write_json_atomic(big / "config.json", cfg);
  expect_error({"eval", "--model", big.string(), "--text", "hello"}, "\"model.layers.0.mlp.gate_proj.weight\" has shape");
}

// --llama-perplexity-positions scores positions T/2 .. T-2 of each window, the targets llama-perplexity
// -c T scores. On one document of 32 tokens (31 bytes + end-of-text) the model is causal, so the
// nats of positions 16..30 are those of positions 0..30 (a window of 31) minus those of 0..15 (the
// first window of 16): three evals, one identity.
TEST_F(Eval, LlamaPerplexityPositionsScoreTheSecondHalfOfEachWindow) {
  const std::string text = "ROMEO: But soft, what light thr";
  ASSERT_EQ(text.size(), 31u);
  auto eval_text = [&](int T, bool second_half) {
    std::vector<std::string> args = {"eval", "--model", run_dir->string(), "--text", text, "--seq-len",
                                     std::to_string(T), "-b", "1", "--max-batches", "1", "--threads", "2", "--json"};
    if (second_half) args.push_back("--llama-perplexity-positions");
    RunResult r = run(args, *dir);
    EXPECT_EQ(r.status, 0) << r.err;
    return r.status == 0 ? json::parse(r.out) : json::object();
  };
  const json half = eval_text(32, true), upto30 = eval_text(31, false), upto15 = eval_text(16, false);
  ASSERT_EQ(half["tokens"], 15);
  ASSERT_EQ(upto30["tokens"], 31);
  ASSERT_EQ(upto15["tokens"], 16);
  const double want = (upto30["loss"].get<double>() * 31 - upto15["loss"].get<double>() * 16) / 15;
  EXPECT_NEAR(half["loss"].get<double>(), want, 1e-4 * want);
  EXPECT_GT(std::abs(half["loss"].get<double>() - upto30["loss"].get<double>()), 1e-3);  // not all positions
  expect_error({"eval", "--model", run_dir->string(), "--text", text, "--seq-len", "3", "--llama-perplexity-positions"},
               "--llama-perplexity-positions needs --seq-len of at least 4");
}

TEST_F(Eval, FlagsOutOfRangeAreOneLineErrors) {
  const std::string m = run_dir->string(), d = data->string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> generate_cases = {
      {{"--temperature", "nan"}, "--temperature"}, {{"--temperature", "inf"}, "--temperature"},
      {{"--temperature", "-0.5"}, "--temperature"}, {{"--top-p", "nan"}, "--top-p"},
      {{"--top-p", "0"}, "--top-p"},               {{"--top-p", "1.5"}, "--top-p"},
      {{"--top-k", "-1"}, "--top-k"},              {{"--max-tokens", "-1"}, "--max-tokens"},
      {{"--threads", "-1"}, "--threads"}};
  for (const auto& [flags, needle] : generate_cases) {
    std::vector<std::string> args = {"generate", "--model", m, "--prompt", "x"};
    args.insert(args.end(), flags.begin(), flags.end());
    expect_error(args, needle);
  }
  // An unsigned seed must not silently wrap "-1" to 2^64 - 1 (CLI11 reports this one itself).
  RunResult seed = run({"generate", "--model", m, "--prompt", "x", "--seed", "-1"}, *dir);
  EXPECT_NE(seed.status, 0);
  EXPECT_NE(seed.err.find("--seed"), std::string::npos) << seed.err;

  const std::vector<std::pair<std::vector<std::string>, std::string>> eval_cases = {
      {{"--batch-size", "0"}, "--batch-size"},
      {{"--seq-len", "-5"}, "--seq-len"},
      {{"--max-batches", "-1"}, "--max-batches"},
      {{"--threads", "-2"}, "--threads"},
      {{"--split", "test"}, "--split"},
      {{"--val-fraction", "nan"}, "--val-fraction"},
      {{"--phase", "medium"}, "--phase"},
      {{"--phase", "soft"}, "--phase soft needs --quant-k"},  // the final model dir has no k
      {{"--phase", "hard", "--quant-k", "3"}, "--quant-k"},
      {{"--phase", "soft", "--quant-k", "nan"}, "--quant-k"},
      {{"--phase", "soft", "--quant-k", "0"}, "--quant-k"}};
  for (const auto& [flags, needle] : eval_cases) {
    std::vector<std::string> args = {"eval", "--model", m, "--data", d};
    args.insert(args.end(), flags.begin(), flags.end());
    expect_error(args, needle);
  }
  expect_error({"eval", "--model", m, "--data", (*dir / "missing.txt").string()}, "missing.txt");
  expect_error({"eval", "--model", m, "--text", "abc", "--split", "val"}, "--split val needs --data");
}
