// Exact resume through the real binary: a run of 2n steps, and a run killed with SIGKILL right after
// its checkpoint at step n and then resumed for the rest, give bitwise-equal per-step losses and
// bitwise-equal weights. Likewise for Ctrl-C mid-run (SIGINT saves a checkpoint and exits 0) followed
// by rerunning the command, which resumes from `latest` by itself, also when Ctrl-C lands in the
// middle of a step's micro-batches; and one SIGTERM stops even a step of thousands of micro-batches.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "cli_util.h"
#include "trajectory.h"
#include "onebit/core/json_util.h"
#include "onebit/train/metrics_log.h"

using namespace onebit;
using namespace onebit::test;

namespace {

constexpr int kN = 10;  // checkpoint step; runs go to 2n

std::vector<std::string> train_args(const fs::path& data, const fs::path& out, int64_t max_steps,
                                    const std::string& schedule = "cosine") {
  return {"train",
          "--data", data.string(),
          "--model-config", micro_config_path(),
          "--output-dir", out.string(),
          "--max-steps", std::to_string(max_steps),
          "--save-every", std::to_string(kN),
          "--batch-size", "8", "--seq-len", "64",
          "--accumulation-steps", "2",
          // All three quantization phases happen before and after the interruption.
          "--quant-warmup-steps", "4", "--quant-anneal-steps", "8",
          "--warmup-steps", "3", "--lr", "3e-3", "--schedule", schedule,
          "--eval-every", "5", "--eval-batches", "2",
          "--threads", "2", "--seed", "7"};
}

std::string step_dir(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%06lld", static_cast<long long>(step));
  return name;
}

class ExactResume : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = cli_temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    data = write_small_text(dir, 60000);
    full = dir / "full";
  }
  void TearDown() override { fs::remove_all(dir); }

  // The uninterrupted reference run.
  void run_full(int64_t max_steps, const std::string& schedule = "cosine") {
    full_steps = max_steps;
    RunResult r = run(train_args(data, full, max_steps, schedule), dir);
    ASSERT_EQ(r.status, 0) << r.err;
  }

  void expect_same_as_full(const fs::path& run) {
    auto a = trajectory(full), b = trajectory(run);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_GE(a.size(), static_cast<size_t>(full_steps));
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "metrics line " << i;
    EXPECT_TRUE(read_file(full / "model.safetensors") == read_file(run / "model.safetensors"))
        << "final weights differ";
    const fs::path last = fs::path("checkpoints") / step_dir(full_steps);
    EXPECT_TRUE(read_file(full / last / "optimizer.safetensors") == read_file(run / last / "optimizer.safetensors"))
        << "optimizer state differs";
  }

  fs::path dir, data, full;
  int64_t full_steps = 0;
};

// Kills the child unless the test reaped it (an assertion must not leave a training run behind).
struct ChildGuard {
  pid_t pid;
  bool reaped = false;
  ~ChildGuard() {
    if (!reaped) {
      ::kill(pid, SIGKILL);
      wait_status(pid);
    }
  }
};

}  // namespace

TEST_F(ExactResume, SigkillAfterCheckpointThenResume) {
  run_full(2 * kN);
  const fs::path run2 = dir / "killed";
  const fs::path ckpt = run2 / "checkpoints" / "step-000010";
  pid_t pid = spawn(train_args(data, run2, 2 * kN), dir / "k.out", dir / "k.err", dir / "cache");
  int exited = -1;
  ASSERT_TRUE(wait_for_path(ckpt, pid, 300, &exited)) << "no step-10 checkpoint: " << read_file(dir / "k.err");
  if (exited < 0) {
    ::kill(pid, SIGKILL);
    EXPECT_EQ(wait_status(pid), 128 + SIGKILL);
  } else {
    // The run finished between two polls; resuming from step 10 below is still the whole test.
    std::printf("note: the run had finished before SIGKILL (status %d)\n", exited);
  }
  // The killed run may have gone past step 10; resume explicitly from the step-10 checkpoint.
  std::vector<std::string> args = train_args(data, run2, 2 * kN);
  args.push_back("--resume");
  args.push_back(ckpt.string());
  RunResult r = run(args, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from " + ckpt.string() + " at step 10"), std::string::npos) << r.err;
  expect_same_as_full(run2);
}

// Ctrl-C must land mid-run: the interrupted run is asked for far more steps than it can do in the
// test's time (a constant LR makes its trajectory independent of --max-steps), so it cannot end on
// its own; the signal comes once its step-10 checkpoint exists. It must stop at the step it had
// reached, save that step as `latest` and exit 0; rerunning (with the reference's --max-steps)
// resumes from there and reproduces the uninterrupted reference bit for bit.
TEST_F(ExactResume, CtrlCSavesAndRerunResumesFromLatest) {
  constexpr int64_t kUnreachable = 1000000;
  const fs::path run2 = dir / "interrupted";
  ChildGuard child{spawn(train_args(data, run2, kUnreachable, "constant"), dir / "i.out", dir / "i.err", dir / "cache")};
  int exited = -1;
  ASSERT_TRUE(wait_for_path(run2 / "checkpoints" / "step-000010", child.pid, 300, &exited))
      << "no step-10 checkpoint: " << read_file(dir / "i.err");
  ASSERT_EQ(exited, -1) << "the run ended before SIGINT: " << read_file(dir / "i.err");
  ASSERT_EQ(::kill(child.pid, SIGINT), 0);
  const int status = wait_status(child.pid);
  child.reaped = true;
  const std::string err = read_file(dir / "i.err");
  ASSERT_EQ(status, 0) << err;

  // Where it stopped: the log, `latest`, its trainer_state.json and metrics.jsonl all name one step.
  const size_t at = err.find("interrupted at step ");
  ASSERT_NE(at, std::string::npos) << err;
  const int64_t stopped = std::stoll(err.substr(at + std::strlen("interrupted at step ")));
  EXPECT_GE(stopped, kN);
  EXPECT_LT(stopped, kUnreachable);
  const std::string ckpt = step_dir(stopped);
  EXPECT_EQ(read_file(run2 / "checkpoints" / "latest"), ckpt + "\n");
  EXPECT_EQ(read_json_file(run2 / "checkpoints" / ckpt / "trainer_state.json")["step"].get<int64_t>(), stopped);
  const auto lines = train::read_jsonl(run2 / "metrics.jsonl");
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["step"].get<int64_t>(), stopped);
  EXPECT_FALSE(fs::exists(run2 / "model.safetensors")) << "final model written by an interrupted run";

  // The reference ends a few steps after the interruption; the rerun resumes from `latest`.
  run_full(std::max<int64_t>(2 * kN, stopped + kN / 2), "constant");
  RunResult r = run(train_args(data, run2, full_steps, "constant"), dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from " + (run2 / "checkpoints" / ckpt).string() + " at step " + std::to_string(stopped)),
            std::string::npos)
      << r.err;
  expect_same_as_full(run2);
}

namespace {

// Waits until `file` contains `needle` (or the process exits, or timeout); true if seen.
bool wait_for_text(const fs::path& file, const std::string& needle, pid_t pid, double timeout_s, int* exited) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < timeout_s) {
    if (fs::exists(file) && read_file(file).find(needle) != std::string::npos) return true;
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      *exited = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

std::vector<std::string> long_step_args(const fs::path& data, const fs::path& out, int accumulation) {
  return {"train", "--data", data.string(), "--model-config",
          micro_config_path(), "--output-dir", out.string(),
          "--max-steps", "3", "--batch-size", "2", "--seq-len", "16", "--accumulation-steps",
          std::to_string(accumulation), "--eval-batches", "1", "--threads", "2", "--seed", "11"};
}

}  // namespace

// One SIGTERM during a step of 4096 micro-batches (over a minute here) stops the run within
// seconds: the micro-batch loop polls the interrupt flag. The half-done step is dropped and the
// last completed one (step 0) is checkpointed.
TEST(InterruptDuringAccumulation, OneSigtermStopsALongStepPromptly) {
  const fs::path dir = cli_temp_dir("long-step");
  const fs::path data = write_small_text(dir, 20000), out = dir / "run";
  pid_t pid = spawn(long_step_args(data, out, 4096), dir / "o.txt", dir / "e.txt", dir / "cache");
  int exited = -1;
  ASSERT_TRUE(wait_for_text(dir / "e.txt", "train: ", pid, 60, &exited)) << read_file(dir / "e.txt");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // well inside step 1
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(pid, SIGTERM);
  EXPECT_EQ(wait_status(pid), 0) << read_file(dir / "e.txt");
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(waited, 10.0) << "the run kept going after SIGTERM";
  EXPECT_NE(read_file(dir / "e.txt").find("interrupted at step 0"), std::string::npos) << read_file(dir / "e.txt");
  EXPECT_EQ(read_file(out / "checkpoints" / "latest"), "step-000000\n");
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));
  fs::remove_all(dir);
}

// Ctrl-C in the middle of a step's micro-batches, then the same command again: the checkpoint
// holds the data and dropout state from the start of the dropped step, so the resumed run is
// bitwise the uninterrupted one.
TEST(InterruptDuringAccumulation, ResumeAfterAMidStepCtrlCIsExact) {
  const fs::path dir = cli_temp_dir("mid-step");
  const fs::path data = write_small_text(dir, 20000), full = dir / "full", cut = dir / "cut";
  RunResult r = run(long_step_args(data, full, 256), dir);
  ASSERT_EQ(r.status, 0) << r.err;
  pid_t pid = spawn(long_step_args(data, cut, 256), dir / "o.txt", dir / "e.txt", dir / "cache");
  int exited = -1;
  const bool seen = wait_for_text(cut / "metrics.jsonl", "\"loss\"", pid, 120, &exited);
  if (seen) {
    ::kill(pid, SIGINT);
    exited = wait_status(pid);
  }
  EXPECT_EQ(exited, 0) << read_file(dir / "e.txt");
  const std::string err = read_file(dir / "e.txt");
  if (err.find("interrupted at step") == std::string::npos) std::printf("note: the run finished before SIGINT\n");
  r = run(long_step_args(data, cut, 256), dir);
  ASSERT_EQ(r.status, 0) << r.err;
  auto a = trajectory(full), b = trajectory(cut);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "metrics line " << i;
  EXPECT_TRUE(read_file(full / "model.safetensors") == read_file(cut / "model.safetensors")) << "final weights differ";
  fs::remove_all(dir);
}
