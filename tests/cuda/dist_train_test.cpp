// `onebit train --device cuda` data-parallel through the real binary (issue 18):
//   - a world of one forced onto NCCL (ONEBIT_DIST_BACKEND=nccl, WORLD_SIZE=1) runs the whole
//     distributed step (bucketed all-reduce from the backward hook, ZeRO-1 AdamW on its shard, the
//     all-gather of the parameters, the optimizer gathered for checkpoints) and with f32 buckets
//     gives bitwise the plain run's losses, weights and optimizer state over 20 steps of the tiny
//     preset through all three quantization phases;
//   - with bf16 buckets (the default on GPUs) the gradients are rounded to bf16 on their way, so the
//     run is not bitwise the plain one: its loss stays within 0.03 nats of it at every step and
//     0.01 on average (one bf16 rounding is a relative 2^-9 of each gradient; AdamW's update
//     m / sqrt(v) barely moves with that, while a wrong bucket - zeros or stale values - moves the
//     curve by far more; the differences are printed so the margin is visible);
//   - two ranks on one GPU fail with one line, before any rendezvous;
//   - two GPUs (torchrun-style variables, one process per GPU) with --batch-size 4 follow one GPU with
//     --batch-size 8: each step's loss within 0.05 nats, the mean within 0.02 (bf16 activations and
//     bf16 buckets: the two sum in different orders and roundings). Skipped, saying so, where fewer
//     than 2 GPUs are visible.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmath>
#include <cstdio>

#include "../cli/cli_util.h"
#include "../cli/trajectory.h"
#include "cuda_test_util.h"
#include "onebit/train/metrics_log.h"

using namespace onebit;
using namespace onebit::test;

namespace {

using kernels::cuda::testing::ScopedEnv;

std::vector<std::string> tiny_args(const fs::path& data, const fs::path& out, int batch, int64_t steps = 20) {
  return {"train", "--data", data.string(), "--model-config", "tiny", "--output-dir", out.string(),
          "--device", "cuda", "--max-steps", std::to_string(steps), "--save-every", "10",
          "--batch-size", std::to_string(batch), "--seq-len", "64", "--quant-warmup-steps", "6",
          "--quant-anneal-steps", "6", "--warmup-steps", "3", "--lr", "3e-3", "--eval-every", "0",
          "--final-eval-batches", "2", "--seed", "5"};
}

std::vector<double> losses(const fs::path& run) {
  std::vector<double> v;
  for (const json& j : train::read_jsonl(run / "metrics.jsonl"))
    if (j.contains("loss")) v.push_back(j["loss"].get<double>());
  return v;
}

int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

class CudaDistTrain : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef ONEBIT_HAVE_NCCL
    GTEST_SKIP() << "onebit was built without NCCL: the GPU data-parallel path is not here";
#endif
    ONEBIT_REQUIRE_GPU();
    dir = cli_temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    data = write_small_text(dir, 200000);
  }
  void TearDown() override {
    if (!dir.empty()) fs::remove_all(dir);
  }
  // The plain single-GPU run the others are held to.
  fs::path plain(int batch = 8) {
    const fs::path out = dir / cat("plain-", batch);
    RunResult r = run(tiny_args(data, out, batch), dir);
    EXPECT_EQ(r.status, 0) << r.err;
    return out;
  }
  fs::path forced_world_of_one(const std::string& wire) {
    const fs::path out = dir / ("nccl-" + wire);
    ScopedEnv env({{"ONEBIT_DIST_BACKEND", "nccl"}, {"ONEBIT_GRAD_WIRE", wire}, {"WORLD_SIZE", "1"}, {"RANK", "0"}});
    RunResult r = run(tiny_args(data, out, 8), dir);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("on each of 1 rank (nccl)"), std::string::npos) << "the run did not use NCCL: " << r.err;
    // The tiny preset's gradients fit one bucket, started by the hook in the backward.
    EXPECT_NE(r.err.find("gradients: 1 bucket of up to 4 Mi values as " + wire + " over nccl, 1 started during the "
                         "backward"),
              std::string::npos)
        << r.err;
    return out;
  }
  fs::path dir, data;
};

const char* kLastCheckpoint = "checkpoints/step-000020";

}  // namespace

TEST_F(CudaDistTrain, WorldOfOneOnNcclWithF32BucketsIsBitwiseThePlainRun) {
  const fs::path a = plain(), b = forced_world_of_one("f32");
  const auto ta = trajectory(a), tb = trajectory(b);
  ASSERT_EQ(ta.size(), 21u);  // 20 steps and the final evaluation
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); ++i) EXPECT_EQ(ta[i], tb[i]) << "metrics line " << i;
  EXPECT_TRUE(read_file(a / "model.safetensors") == read_file(b / "model.safetensors")) << "final weights differ";
  const fs::path opt = fs::path(kLastCheckpoint) / "optimizer.safetensors";
  EXPECT_TRUE(read_file(a / opt) == read_file(b / opt)) << "optimizer state differs";
  EXPECT_EQ(read_json_file(a / kLastCheckpoint / "trainer_state.json")["data"],
            read_json_file(b / kLastCheckpoint / "trainer_state.json")["data"]);
}

TEST_F(CudaDistTrain, WorldOfOneOnNcclWithBf16BucketsStaysWithinBf16RoundingOfThePlainRun) {
  const fs::path a = plain(), b = forced_world_of_one("bf16");
  const auto la = losses(a), lb = losses(b);
  ASSERT_EQ(la.size(), 20u);
  ASSERT_EQ(lb.size(), la.size());
  double worst = 0, mean = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    worst = std::max(worst, std::abs(la[i] - lb[i]));
    mean += std::abs(la[i] - lb[i]) / static_cast<double>(la.size());
    EXPECT_NEAR(lb[i], la[i], 0.03) << "step " << i + 1;
  }
  std::printf("bf16 buckets vs plain: largest per-step loss difference %.5f nats, mean %.5f\n", worst, mean);
  EXPECT_LE(mean, 0.01);
  // The rounding happened: the weights are not bitwise the plain run's.
  EXPECT_FALSE(read_file(a / "model.safetensors") == read_file(b / "model.safetensors"))
      << "bf16 buckets left the weights bitwise unchanged: were the gradients reduced at all?";
}

TEST_F(CudaDistTrain, TwoRanksOnOneGpuFailWithOneLine) {
  // One visible GPU and a host of two ranks: rank 0 must refuse before waiting for rank 1.
  ScopedEnv env({{"CUDA_VISIBLE_DEVICES", "0"}, {"WORLD_SIZE", "2"}, {"RANK", "0"}, {"LOCAL_RANK", "0"},
                 {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(free_port())}});
  const fs::path out = dir / "shared";
  RunResult r = run(tiny_args(data, out, 4), dir);
  EXPECT_NE(r.status, 0);
  expect_one_error_line(r, "2 ranks on this host (torchrun-style environment) but 1 GPU is visible: two ranks would "
                           "share a GPU");
}

TEST_F(CudaDistTrain, TwoGpusEqualOneGpuWithTwiceTheBatch) {
  if (kernels::cuda::device_count() < 2)
    GTEST_SKIP() << "fewer than 2 GPUs are visible (" << kernels::cuda::device_count()
                 << "): the 2-process NCCL comparison needs a machine with several GPUs";
  const fs::path one = plain(8), two = dir / "two";
  const std::string port = std::to_string(free_port());
  pid_t pids[2];
  for (int rank = 0; rank < 2; ++rank) {
    ScopedEnv env({{"WORLD_SIZE", "2"}, {"RANK", std::to_string(rank)}, {"LOCAL_RANK", std::to_string(rank)},
                   {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", port}});
    pids[rank] = spawn(tiny_args(data, two, 4), dir / cat("r", rank, ".out"), dir / cat("r", rank, ".err"),
                       dir / "cache");
  }
  for (int rank = 0; rank < 2; ++rank)
    EXPECT_EQ(wait_status(pids[rank]), 0) << "rank " << rank << ": " << read_file(dir / cat("r", rank, ".err"));
  const std::string err0 = read_file(dir / "r0.err");
  EXPECT_NE(err0.find("on each of 2 ranks (nccl)"), std::string::npos) << err0;
  EXPECT_NE(err0.find("memory per rank (2 ranks"), std::string::npos) << err0;
  EXPECT_NE(err0.find("gradients: 1 bucket of up to 4 Mi values as bf16 over nccl, 1 started during the backward"),
            std::string::npos)
      << err0;
  const auto l1 = losses(one), l2 = losses(two);
  ASSERT_EQ(l1.size(), 20u);
  ASSERT_EQ(l2.size(), l1.size());
  double worst = 0, m1 = 0, m2 = 0;
  for (size_t i = 0; i < l1.size(); ++i) {
    worst = std::max(worst, std::abs(l1[i] - l2[i]));
    m1 += l1[i] / l1.size(), m2 += l2[i] / l2.size();
    EXPECT_NEAR(l2[i], l1[i], 0.05) << "step " << i + 1;
  }
  std::printf("2 GPUs x batch 4 vs 1 GPU x batch 8: mean loss %.4f vs %.4f, largest per-step difference %.4f\n", m2,
              m1, worst);
  EXPECT_NEAR(m2, m1, 0.02);
  // The same data position and tokens whatever the number of ranks.
  const json s1 = read_json_file(one / kLastCheckpoint / "trainer_state.json");
  const json s2 = read_json_file(two / kLastCheckpoint / "trainer_state.json");
  EXPECT_EQ(s1["data"], s2["data"]);
  EXPECT_EQ(s1["tokens_seen"], s2["tokens_seen"]);
  EXPECT_EQ(s2["world_size"], 2);
}
