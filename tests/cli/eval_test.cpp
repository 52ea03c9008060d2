// `onebit eval` and `onebit generate` through the real binary: weights are checked against
// config.json before the model is allocated.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <sstream>

#include "cli_util.h"
#include "onebit/core/json_util.h"

using namespace onebit;
using namespace onebit::test;

namespace {

const std::string kMicro = (fs::path(ONEBIT_TEST_FIXTURES) / "train" / "micro.json").string();

// Steps 1-3 full precision, 4-7 soft (k rising from 2), 8-9 hard; a checkpoint and a 2-batch eval
// after every step. trainer_state.json records the phase of the step just trained, which is the
// phase the eval at that step ran in.
class Eval : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = new fs::path(cli_temp_dir("eval"));
    data = new fs::path(write_small_text(*dir, 20000));
    run_dir = new fs::path(*dir / "run");
    RunResult r = run({"train", "--data", data->string(), "--model-config", kMicro, "--output-dir", run_dir->string(),
                       "--max-steps", "9", "--save-every", "1", "--keep-checkpoints", "0", "--eval-every", "1",
                       "--eval-batches", "2", "--batch-size", "4", "--seq-len", "32", "--threads", "2",
                       "--quant-warmup-steps", "3", "--quant-anneal-steps", "4"},
                      *dir);
    ASSERT_EQ(r.status, 0) << r.err;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir);
    delete dir;
    delete data;
    delete run_dir;
  }
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
    RunResult r = run(args, *dir);
    EXPECT_NE(r.status, 0) << needle;
    std::string err = r.err;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    EXPECT_EQ(err.find('\n'), std::string::npos) << "more than one line: " << r.err;
    EXPECT_EQ(err.rfind("onebit: error: ", 0), 0u) << r.err;
    EXPECT_NE(err.find(needle), std::string::npos) << "expected \"" << needle << "\" in: " << err;
  }
  static fs::path* dir;
  static fs::path* data;
  static fs::path* run_dir;
};
fs::path* Eval::dir = nullptr;
fs::path* Eval::data = nullptr;
fs::path* Eval::run_dir = nullptr;

}  // namespace

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
  EXPECT_LT(peak_rss_of_failing({"eval", "--model", big.string(), "--text", "hello"}, embed_error), 200L * 1024);
  EXPECT_LT(peak_rss_of_failing({"generate", "--model", big.string(), "--prompt", "hello"}, embed_error), 200L * 1024);
  // A layer count the file cannot hold is refused before the layout (one entry per tensor) is built.
  cfg = read_json_file(*run_dir / "config.json");
  cfg["num_hidden_layers"] = 2000000000;
  write_json_atomic(big / "config.json", cfg);
  EXPECT_LT(peak_rss_of_failing({"eval", "--model", big.string(), "--text", "hello"}, "\"num_hidden_layers\" is 2000000000"),
            200L * 1024);
  // Same size, other shape: the error names the tensor.
  cfg = read_json_file(*run_dir / "config.json");
  cfg["intermediate_size"] = cfg["intermediate_size"].get<int>() + 2;
  write_json_atomic(big / "config.json", cfg);
  expect_error({"eval", "--model", big.string(), "--text", "hello"}, "\"model.layers.0.mlp.gate_proj.weight\" has shape");
}
