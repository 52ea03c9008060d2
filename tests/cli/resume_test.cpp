// Exact resume through the real binary: a run of 2n steps, and a run killed with SIGKILL right after
// its checkpoint at step n and then resumed for the rest, give bitwise-equal per-step losses and
// bitwise-equal weights. Likewise for Ctrl-C (SIGINT saves a checkpoint and exits 0) followed by
// rerunning the same command, which resumes from `latest` by itself.
#include <gtest/gtest.h>

#include "cli_util.h"
#include "trajectory.h"
#include "onebit/core/json_util.h"
#include "onebit/train/metrics_log.h"

using namespace onebit;
using namespace onebit::test;

namespace {

constexpr int kN = 10;  // checkpoint step; runs go to 2n

std::vector<std::string> train_args(const fs::path& data, const fs::path& out, int max_steps) {
  return {"train",
          "--data", data.string(),
          "--model-config", (fs::path(ONEBIT_TEST_FIXTURES) / "train" / "micro.json").string(),
          "--output-dir", out.string(),
          "--max-steps", std::to_string(max_steps),
          "--save-every", std::to_string(kN),
          "--batch-size", "8", "--seq-len", "64",
          "--accumulation-steps", "2",
          // All three quantization phases happen before and after the interruption.
          "--quant-warmup-steps", "4", "--quant-anneal-steps", "8",
          "--warmup-steps", "3", "--lr", "3e-3",
          "--eval-every", "5", "--eval-batches", "2",
          "--threads", "2", "--seed", "7"};
}

class ExactResume : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = cli_temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    data = write_small_text(dir, 60000);
    full = dir / "full";
    RunResult r = run(train_args(data, full, 2 * kN), dir);
    ASSERT_EQ(r.status, 0) << r.err;
  }
  void TearDown() override { fs::remove_all(dir); }

  void expect_same_as_full(const fs::path& run) {
    auto a = trajectory(full), b = trajectory(run);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_GE(a.size(), static_cast<size_t>(2 * kN));
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "metrics line " << i;
    EXPECT_TRUE(read_file(full / "model.safetensors") == read_file(run / "model.safetensors"))
        << "final weights differ";
    const fs::path last = fs::path("checkpoints") / "step-000020";
    EXPECT_TRUE(read_file(full / last / "optimizer.safetensors") == read_file(run / last / "optimizer.safetensors"))
        << "optimizer state differs";
  }

  fs::path dir, data, full;
};

}  // namespace

TEST_F(ExactResume, SigkillAfterCheckpointThenResume) {
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

TEST_F(ExactResume, CtrlCSavesAndRerunResumesFromLatest) {
  const fs::path run2 = dir / "interrupted";
  pid_t pid = spawn(train_args(data, run2, 2 * kN), dir / "i.out", dir / "i.err", dir / "cache");
  int exited = -1;
  ASSERT_TRUE(wait_for_path(run2 / "checkpoints" / "step-000010", pid, 300, &exited))
      << "no step-10 checkpoint: " << read_file(dir / "i.err");
  if (exited < 0) {
    ::kill(pid, SIGINT);
    exited = wait_status(pid);
  }
  EXPECT_EQ(exited, 0) << read_file(dir / "i.err");
  const std::string err = read_file(dir / "i.err");
  if (err.find("interrupted at step") != std::string::npos) {
    EXPECT_FALSE(fs::exists(run2 / "model.safetensors")) << "final model written by an interrupted run";
  } else {
    std::printf("note: the run had finished before SIGINT\n");
  }
  RunResult r = run(train_args(data, run2, 2 * kN), dir);  // same command: resumes from latest
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from"), std::string::npos) << r.err;
  expect_same_as_full(run2);
}
