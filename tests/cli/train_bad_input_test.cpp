// `onebit train` on bad input, through the real binary: flags out of range (values that used to
// hang, allocate without limit or silently train an all-NaN model), argument-parser errors, a
// hand-edited trainer_state.json, and an --output-dir that is a file. Each must end with exactly one
// stderr line "onebit: error: ..." naming the flag or the file and key, a non-zero exit status, and
// no file of the run dir changed.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "cli_util.h"
#include "onebit/core/json_util.h"

using namespace onebit;
using namespace onebit::test;

namespace {

const std::string kMicro = micro_config_path();

class TrainBadInput : public TrainedRunSuite<TrainBadInput> {
 public:
  static constexpr const char* kName = "train-bad-input";
  static constexpr size_t kTextBytes = 20000;
  static std::vector<std::string> train_args(const fs::path& out) { return args(out, {}); }

 protected:
  // A two-step run on the micro model, plus `extra`, which overrides the defaults it repeats.
  static std::vector<std::string> args(const fs::path& out, const std::vector<std::string>& extra) {
    std::vector<std::string> a = {"train", "--data", data->string(), "--model-config", kMicro, "--output-dir",
                                  out.string()};
    const std::pair<const char*, const char*> defaults[] = {
        {"--max-steps", "2"}, {"--seq-len", "32"}, {"--threads", "2"}, {"--eval-batches", "1"}};
    for (const auto& [flag, value] : defaults)
      if (std::find(extra.begin(), extra.end(), flag) == extra.end()) a.insert(a.end(), {flag, value});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // The command fails with exactly one "onebit: error: ..." line, the last on stderr, holding
  // `needle` (any lines before it are [onebit info]/[onebit warn] progress logs), and leaves every
  // file under `protect` as it was.
  static void expect_one_error(const std::vector<std::string>& a, const std::string& needle, const fs::path& protect) {
    expect_error_leaving(a, *dir, needle, protect);
  }
  static fs::path copy_run(const std::string& name) { return copy_dir_fresh(*run_dir, *dir / name); }
};

}  // namespace

TEST_F(TrainBadInput, FlagsOutOfRangeAreRefusedNamingTheFlag) {
  struct Case {
    std::vector<std::string> flags;
    const char* message;
  };
  const Case cases[] = {
      {{"--beta1", "1"}, "--beta1 must be in [0, 1) (got 1)"},
      {{"--beta1", "-1"}, "--beta1 must be in [0, 1) (got -1)"},
      {{"--beta2", "2"}, "--beta2 must be in [0, 1) (got 2)"},
      {{"--lr", "inf"}, "--lr must be a finite number (got inf)"},
      {{"--lr", "0"}, "--lr must be > 0 (got 0)"},
      {{"--weight-decay", "nan"}, "--weight-decay must be a finite number (got nan)"},
      {{"--grad-clip", "nan"}, "--grad-clip must be a finite number (got nan)"},
      {{"--eps", "0"}, "--eps must be > 0"},
      {{"--threads", "-5"}, "--threads must be in [0, 4096] (got -5)"},
      {{"--seq-len", "-1"}, "--seq-len must be in [1, 1048576] (got -1)"},
      {{"--accumulation-steps", "2147483647"}, "--accumulation-steps must be in [1, 4096] (got 2147483647)"},
      {{"--batch-size", "2147483647"}, "--batch-size must be in [1, 1048576] (got 2147483647)"},
      {{"--batch-size", "1048576", "--seq-len", "32"}, "--batch-size 1048576 x --seq-len 32 = 33554432 tokens"},
      {{"--keep-checkpoints", "-1"}, "--keep-checkpoints must be in [0, "},
      {{"--max-steps", "-3"}, "--max-steps must be in [1, "},
      {{"--min-lr", "-2"}, "--min-lr must be >= 0 (or -1 for the default) (got -2)"},
      {{"--min-lr", "0.5"}, "--min-lr 0.5 is above --lr 0.002"},
      {{"--quant-k-start", "50", "--quant-k-end", "10"}, "--quant-k-end 10 is below --quant-k-start 50"},
      {{"--val-fraction", "1"}, "--val-fraction must be in [0, 1) (got 1)"},
      {{"--final-eval-batches", "-1"}, "--final-eval-batches must be in [0, "},
      {{"--schedule", "cosin"}, "--schedule \"cosin\" is not one of cosine, linear, constant"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.flags[0] + " " + c.flags[1]);
    std::vector<std::string> extra = c.flags;
    extra.push_back("--no-resume");  // so that the range check, not the resume check, is what fails
    expect_one_error(args(*run_dir, extra), c.message, *run_dir);
    // A fresh output dir is not even created.
    const fs::path fresh = *dir / "never-created";
    RunResult r = run(args(fresh, c.flags), *dir);
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "refused before any log line:\n" << r.err;
    EXPECT_FALSE(fs::exists(fresh));
  }
}

TEST_F(TrainBadInput, ArgumentParserErrorsAreOneLine) {
  expect_one_error(args(*run_dir, {"--batch-size", "abc"}), "--batch-size", *run_dir);
  RunResult one = run(args(*dir / "never-created", {"--no-such-flag"}), *dir);
  EXPECT_EQ(one.err, "onebit: error: The following argument was not expected: --no-such-flag (see --help)\n");
  expect_one_error(args(*run_dir, {"--no-such-flag"}), "--no-such-flag", *run_dir);
  expect_one_error({"train", "--data", data->string()}, "--output-dir", *run_dir);  // required
  expect_one_error({"eval", "--model", run_dir->string(), "--data", data->string(), "--no-such-flag"},
                   "--no-such-flag", *run_dir);  // every subcommand
  expect_one_error({"frobnicate"}, "subcommand", *run_dir);
  RunResult h = run({"train", "--help"}, *dir);  // help is not an error
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("--final-eval-batches"), std::string::npos);
  EXPECT_EQ(h.err, "");
}

TEST_F(TrainBadInput, TrainerStateFieldsAreCheckedNamingFileAndKey) {
  struct Case {
    const char* pointer;
    json value;
    const char* message;
  };
  const Case cases[] = {
      {"/optimizer/t", -1, "key \"optimizer.t\" must be in [0, "},
      {"/step", -4, "key \"step\" must be in [0, "},
      {"/step", "2", "key \"step\" has the wrong type (got string, expected an integer)"},
      {"/run/accumulation_steps", 2147483647, "key \"run.accumulation_steps\" must be in [1, 4096]"},
      {"/run/beta1", 1, "key \"run.beta1\" must be in [0, 1)"},
      {"/run/lr", "fast", "key \"run.lr\" has the wrong type (got string, expected a number)"},
      {"/run/batch_size", 2147483647, "key \"run.batch_size\" must be in [1, 1048576]"},
      {"/data/batches", -1, "key \"data\": data state: key \"batches\" is out of range (got -1)"},
      {"/data/kind", 5, "key \"data\": data state: key \"kind\" has the wrong type"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.pointer);
    const fs::path d = copy_run("state");
    const fs::path sp = d / "checkpoints" / "step-000002" / "trainer_state.json";
    json st = read_json_file(sp);
    st[json::json_pointer(c.pointer)] = c.value;
    write_json_atomic(sp, st);
    // Resuming by rerunning with more steps, flags left out: the values come from the file.
    expect_one_error({"train", "--output-dir", d.string(), "--max-steps", "4"}, sp.string() + ": " + c.message, d);
  }
}

TEST_F(TrainBadInput, OutputDirThatIsAFile) {
  const fs::path f = *dir / "a-file";
  write_file_atomic(f, "not a dir\n");
  auto before = read_file(f);
  RunResult r = run(args(f, {}), *dir);
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err, "onebit: error: --output-dir " + f.string() + " exists and is not a directory\n");
  EXPECT_EQ(read_file(f), before);
}
