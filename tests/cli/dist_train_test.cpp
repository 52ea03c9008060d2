// Data-parallel training through the real binary under `mpirun -np 2` (the CPU MPI path, issue 18):
//   - two ranks with --batch-size 2 follow one process with --batch-size 4 (the same global batch):
//     the same loss curve, gradient norms, eval losses and final weights and optimizer state, to f32
//     rounding (the ranks' gradients are summed in another order than one batch's);
//   - a checkpoint of two ranks resumes on one and the other way round, at the same data position,
//     and continues the same trajectory;
//   - the same for a streamed JSONL source;
//   - kill -9 of one rank ends the job with a non-zero status and mpirun naming the rank, and the
//     last checkpoint resumes;
//   - one process forced onto MPI (ONEBIT_DIST_BACKEND=mpi) runs every collective of the step and is
//     bitwise the plain run (a sum over one rank is the value itself).
// Skipped with a message where mpirun is not installed or onebit was built without MPI.
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli_util.h"
#include "mpirun.h"
#include "trajectory.h"
#include "onebit/core/json_util.h"
#include "onebit/formats/safetensors.h"
#include "onebit/train/metrics_log.h"

using namespace onebit;
using namespace onebit::test;

namespace {

// Tolerances. The ranks' gradients are f32 sums of 2 + 2 rows where one process sums 4 rows, so they
// differ in the last bits; AdamW's normalization (m / sqrt(v) turns last-bit differences of a near-zero
// gradient into a share of a whole lr-sized step) and 6 steps, two of them ternary, carry that into
// the weights. One process with --batch-size 2 --accumulation-steps 2 sums in that same other order:
// the two ranks must be no further from the big batch than it is (expect_close_tensors). Observed on
// the tiny preset: losses within 3e-6, weights within 4.5e-4 (relative L2) and 3.2e-4 (absolute), m
// and v within 3.7e-3 / 2.8e-5, for the ranks and for accumulation alike.
constexpr double kLossTol = 1e-4;      // relative
constexpr double kGradNormTol = 1e-3;  // relative
constexpr double kTensorRelL2 = 1e-2;
constexpr double kTensorAbs = 1e-3;  // a third of --lr 3e-3, the most one AdamW step moves a weight

// Runs argv[0] (mpirun) with argv; stdout/stderr to files, the token cache in `cache`.
pid_t spawn_argv(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err, const fs::path& cache) {
  ProcessIo io(out, err);
  io.env["XDG_CACHE_HOME"] = cache.string();
  return spawn_process(argv, io);
}

std::vector<float> f32_tensor(const formats::SafetensorsFile& f, const formats::TensorInfo& t) {
  std::vector<float> v(t.numel());
  f.read_f32(t.name, t.shape, v);
  return v;
}

// How far apart the tensors of two safetensors files are (same names and shapes asserted): the
// largest over tensors of |x - y| / |x| (L2 norms), and the largest |x_i - y_i|.
struct TensorDiff {
  double rel_l2 = 0, abs = 0;
};
TensorDiff tensor_diff(const fs::path& a, const fs::path& b) {
  formats::SafetensorsFile fa(a), fb(b);
  EXPECT_EQ(fa.tensors().size(), fb.tensors().size()) << a << " vs " << b;
  TensorDiff worst;
  std::string rel_name, abs_name;
  for (const auto& t : fa.tensors()) {
    if (!fb.contains(t.name)) {
      ADD_FAILURE() << b << " lacks " << t.name;
      continue;
    }
    const std::vector<float> x = f32_tensor(fa, t), y = f32_tensor(fb, fb.info(t.name));
    double dd = 0, xx = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double d = static_cast<double>(x[i]) - y[i];
      dd += d * d;
      xx += static_cast<double>(x[i]) * x[i];
      if (std::abs(d) > worst.abs) worst.abs = std::abs(d), abs_name = t.name;
    }
    const double r = xx > 0 ? std::sqrt(dd / xx) : std::sqrt(dd);
    if (r > worst.rel_l2) worst.rel_l2 = r, rel_name = t.name;
  }
  std::printf("%s vs %s, %s: relative L2 difference up to %.3g (%s), absolute up to %.3g (%s)\n",
              a.parent_path().filename().c_str(), b.parent_path().filename().c_str(), a.filename().c_str(),
              worst.rel_l2, rel_name.c_str(), worst.abs, abs_name.c_str());
  return worst;
}

// Close: within the fixed bounds.
TensorDiff expect_close_tensors(const fs::path& a, const fs::path& b) {
  const TensorDiff d = tensor_diff(a, b);
  EXPECT_LE(d.rel_l2, kTensorRelL2) << a << " vs " << b;
  EXPECT_LE(d.abs, kTensorAbs) << a << " vs " << b;
  return d;
}

// And no further apart than `reference` (two single-process runs that differ only in summation
// order) allows, with 50% slack.
void expect_close_tensors(const fs::path& a, const fs::path& b, const TensorDiff& reference) {
  const TensorDiff d = expect_close_tensors(a, b);
  EXPECT_LE(d.rel_l2, 1.5 * reference.rel_l2 + 1e-6) << a << " vs " << b << ": further apart than accumulation";
  EXPECT_LE(d.abs, 1.5 * reference.abs + 1e-7) << a << " vs " << b << ": further apart than accumulation";
}

double rel(double a, double b) { return std::abs(a - b) / std::max(1e-3, std::abs(a)); }

// metrics.jsonl lines of two runs, step by step (train and eval lines alike).
void expect_close_metrics(const fs::path& a, const fs::path& b, int64_t from_step = 0) {
  std::vector<json> x, y;
  for (const json& j : train::read_jsonl(a / "metrics.jsonl"))
    if (j["step"].get<int64_t>() > from_step) x.push_back(j);
  for (const json& j : train::read_jsonl(b / "metrics.jsonl"))
    if (j["step"].get<int64_t>() > from_step) y.push_back(j);
  ASSERT_EQ(x.size(), y.size()) << a << " vs " << b;
  ASSERT_FALSE(x.empty());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(x[i]["step"], y[i]["step"]);
    for (const char* k : {"loss", "val_loss"})
      if (x[i].contains(k)) {
        ASSERT_TRUE(y[i].contains(k)) << k << " line " << i;
        EXPECT_LE(rel(x[i][k].get<double>(), y[i][k].get<double>()), kLossTol) << k << " at step " << x[i]["step"];
      }
    if (x[i].contains("grad_norm")) {
      EXPECT_LE(rel(x[i]["grad_norm"].get<double>(), y[i]["grad_norm"].get<double>()), kGradNormTol)
          << "grad_norm at step " << x[i]["step"];
    }
    for (const char* k : {"tokens", "lr", "phase", "val_tokens"}) {
      if (!x[i].contains(k)) continue;
      EXPECT_EQ(x[i][k], y[i][k]) << k << " at step " << x[i]["step"];
    }
  }
}

class DistTrain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    mpirun_ = find_mpirun();
    if (mpirun_.empty()) return;
    dir_ = cli_temp_dir("dist-train");
    data_ = write_small_text(dir_, 60000);
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (mpirun_.empty()) GTEST_SKIP() << "mpirun is not installed (apt-get install openmpi-bin): data-parallel tests skipped";
  }

  // The tiny preset, every quantization phase within 6 steps, a checkpoint at step 3.
  static std::vector<std::string> train_args(const fs::path& out, const std::string& model = "tiny",
                                             int64_t max_steps = 6, int64_t save_every = 3) {
    return {"train", "--data", data_.string(), "--model-config", model, "--output-dir", out.string(),
            "--max-steps", std::to_string(max_steps), "--save-every", std::to_string(save_every),
            "--seq-len", "64", "--quant-warmup-steps", "2", "--quant-anneal-steps", "2", "--warmup-steps", "1",
            "--lr", "3e-3", "--eval-every", "3", "--eval-batches", "2", "--final-eval-batches", "2",
            "--threads", "1", "--seed", "7"};
  }

  static std::vector<std::string> mpirun(int ranks, std::vector<std::string> args) {
    // Two cores here and in CI: no binding, oversubscription allowed, shared memory between ranks.
    std::vector<std::string> argv = {mpirun_, "-np", std::to_string(ranks), "--oversubscribe", "--bind-to", "none"};
    if (::geteuid() == 0) argv.push_back("--allow-run-as-root");  // CI runs as root
    argv.push_back(ONEBIT_BINARY);
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  static RunResult run_argv(const std::vector<std::string>& argv) {
    RunResult r;
    r.status = wait_status(spawn_argv(argv, dir_ / "o.txt", dir_ / "e.txt", dir_ / "cache"));
    r.out = read_file(dir_ / "o.txt");
    r.err = read_file(dir_ / "e.txt");
    return r;
  }

  static std::vector<std::string> with(std::vector<std::string> a, std::initializer_list<std::string> more) {
    a.insert(a.end(), more);
    return a;
  }

  // The reference runs, made once: one process with batch 4, two ranks with batch 2 each.
  static const fs::path& one() {
    static fs::path p = [] {
      fs::path out = dir_ / "one";
      RunResult r = run(with(train_args(out), {"--batch-size", "4"}), dir_);
      EXPECT_EQ(r.status, 0) << r.err;
      return out;
    }();
    return p;
  }
  // One process with 2 x 2 accumulated: the big batch's gradient summed in the ranks' order.
  static const fs::path& accumulated() {
    static fs::path p = [] {
      fs::path out = dir_ / "accumulated";
      RunResult r = run(with(train_args(out), {"--batch-size", "2", "--accumulation-steps", "2"}), dir_);
      EXPECT_EQ(r.status, 0) << r.err;
      return out;
    }();
    return p;
  }
  static TensorDiff reference(const std::string& file) { return tensor_diff(one() / file, accumulated() / file); }
  static const fs::path& two() {
    static fs::path p = [] {
      fs::path out = dir_ / "two";
      RunResult r = run_argv(mpirun(2, with(train_args(out), {"--batch-size", "2"})));
      EXPECT_EQ(r.status, 0) << r.err;
      // Rank 0 alone logs: the run's lines appear once.
      EXPECT_EQ(r.err.find("[onebit info] train:"), r.err.rfind("[onebit info] train:")) << r.err;
      EXPECT_NE(r.err.find("memory per rank (2 ranks"), std::string::npos) << r.err;
      return out;
    }();
    return p;
  }

  static inline std::string mpirun_;
  static inline fs::path dir_, data_;
};

std::string ckpt(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%06lld", static_cast<long long>(step));
  return (fs::path("checkpoints") / name).string();
}

}  // namespace

TEST_F(DistTrain, TwoRanksEqualOneProcessWithTwiceTheBatch) {
  expect_close_metrics(one(), two());
  expect_close_tensors(one() / "model.safetensors", two() / "model.safetensors", reference("model.safetensors"));
  // ZeRO-1's shards gathered by rank 0 make the same optimizer file one process writes.
  const std::string opt6 = ckpt(6) + "/optimizer.safetensors";
  expect_close_tensors(one() / opt6, two() / opt6, reference(opt6));
  // The same files, and the same data position, whatever the number of ranks.
  EXPECT_EQ(snapshot(one()).size(), snapshot(two()).size());
  const json s1 = read_json_file(one() / ckpt(3) / "trainer_state.json");
  const json s2 = read_json_file(two() / ckpt(3) / "trainer_state.json");
  EXPECT_EQ(s1["data"], s2["data"]);
  EXPECT_EQ(s1["tokens_seen"], s2["tokens_seen"]);
  EXPECT_EQ(s1["world_size"], 1);
  EXPECT_EQ(s2["world_size"], 2);
  EXPECT_EQ(s2["run"]["batch_size"], 2);
}

TEST_F(DistTrain, TwoRankCheckpointResumesOnOneRank) {
  const fs::path out = dir_ / "two-then-one";
  // No --batch-size: the checkpoint's global batch of 2 x 2 becomes 4 on one rank.
  RunResult r = run(with(train_args(out), {"--resume", (two() / ckpt(3)).string()}), dir_);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("resuming a checkpoint of 2 ranks on 1 rank: --batch-size 4 per rank"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("at step 3"), std::string::npos) << r.err;
  expect_close_metrics(two(), out, 3);
  expect_close_tensors(two() / "model.safetensors", out / "model.safetensors");
}

TEST_F(DistTrain, OneRankCheckpointResumesOnTwoRanks) {
  const fs::path out = dir_ / "one-then-two";
  RunResult r = run_argv(mpirun(2, with(train_args(out), {"--resume", (one() / ckpt(3)).string()})));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("resuming a checkpoint of 1 rank on 2 ranks: --batch-size 2 per rank"), std::string::npos) << r.err;
  expect_close_metrics(one(), out, 3);
  expect_close_tensors(one() / "model.safetensors", out / "model.safetensors");
}

TEST_F(DistTrain, ResumeOnRanksThatDoNotSplitTheBatchFails) {
  const fs::path out = dir_ / "one-then-three";
  // one()'s global batch of 4 does not split over 3 ranks.
  RunResult r = run_argv(mpirun(3, with(train_args(out), {"--resume", (one() / ckpt(3)).string()})));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("onebit: error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("global batch of 4 sequences (1 rank x --batch-size 4) does not split over 3 ranks"),
            std::string::npos)
      << r.err;
}

TEST_F(DistTrain, StreamedJsonlTwoRanksEqualOneProcess) {
  // A streamed source (no random access): each rank reads the stream and keeps its own rows.
  const fs::path jsonl = dir_ / "docs.jsonl";
  {
    const std::string text = read_file(data_);
    std::string lines;
    for (size_t at = 0; at < text.size(); at += 1000) lines += json{{"text", text.substr(at, 1000)}}.dump() + "\n";
    write_file_atomic(jsonl, lines);
  }
  auto args = [&](const fs::path& out, const std::string& b) {
    return std::vector<std::string>{"train", "--data", jsonl.string(), "--model-config", micro_config_path(),
                                    "--output-dir", out.string(), "--max-steps", "6", "--save-every", "3",
                                    "--seq-len", "64", "--batch-size", b, "--threads", "1", "--final-eval-batches", "2"};
  };
  const fs::path a = dir_ / "jsonl-one", b = dir_ / "jsonl-two";
  RunResult r1 = run(args(a, "4"), dir_);
  ASSERT_EQ(r1.status, 0) << r1.err;
  RunResult r2 = run_argv(mpirun(2, args(b, "2")));
  ASSERT_EQ(r2.status, 0) << r2.err;
  expect_close_metrics(a, b);
  EXPECT_EQ(read_json_file(a / ckpt(3) / "trainer_state.json")["data"],
            read_json_file(b / ckpt(3) / "trainer_state.json")["data"]);
}

TEST_F(DistTrain, KillOfOneRankEndsTheJobAndTheCheckpointResumes) {
  const fs::path out = dir_ / "killed";
  // The micro config and many steps: the job is still running when its step-2 checkpoint appears.
  const std::vector<std::string> args = with(train_args(out, micro_config_path(), 100000, 2), {"--batch-size", "2"});
  pid_t pid = spawn_argv(mpirun(2, args), dir_ / "k.out", dir_ / "k.err", dir_ / "cache");
  int exited = -1;
  ASSERT_TRUE(wait_for_path(out / ckpt(2), pid, 120, &exited)) << read_file(dir_ / "k.err");
  ASSERT_EQ(exited, -1) << read_file(dir_ / "k.err");
  const pid_t victim = find_rank(pid, 1);
  ASSERT_GT(victim, 0) << "rank 1 not found among mpirun's children";
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  const auto t0 = std::chrono::steady_clock::now();
  const int status = wait_status(pid);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string err = read_file(dir_ / "k.err");
  EXPECT_NE(status, 0) << err;
  EXPECT_LT(waited, 30.0) << "the job took too long to end after a rank died";
  // mpirun names the rank that died and how.
  EXPECT_NE(err.find("rank 1"), std::string::npos) << err;
  EXPECT_NE(err.find("signal 9"), std::string::npos) << err;

  // The last complete checkpoint resumes (on one rank, with a short run).
  const fs::path latest = out / "checkpoints" / "latest";
  ASSERT_TRUE(fs::exists(latest)) << err;
  std::string name = read_file(latest);
  name.erase(name.find_last_not_of("\n") + 1);
  const fs::path resumed = dir_ / "resumed";
  std::vector<std::string> again = train_args(resumed, micro_config_path(), std::stoll(name.substr(5)) + 2, 2);
  again = with(again, {"--resume", (out / "checkpoints" / name).string()});
  RunResult r = run(again, dir_);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from"), std::string::npos) << r.err;
}

TEST_F(DistTrain, AWorldOfOneForcedOntoMpiIsBitwiseThePlainRun) {
  const fs::path out = dir_ / "forced-mpi";
  ::setenv("ONEBIT_DIST_BACKEND", "mpi", 1);
  RunResult r = run(with(train_args(out), {"--batch-size", "4"}), dir_);
  ::unsetenv("ONEBIT_DIST_BACKEND");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("on each of 1 rank (mpi)"), std::string::npos) << r.err;
  // The CPU path reduces after the backward (MPI blocks: nothing to overlap).
  EXPECT_NE(r.err.find("gradients: 1 bucket of up to 4 Mi values as f32 over mpi, 0 started during the backward"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(trajectory(one()), trajectory(out));
  EXPECT_TRUE(read_file(one() / "model.safetensors") == read_file(out / "model.safetensors"));
  const std::string opt6 = ckpt(6) + "/optimizer.safetensors";
  EXPECT_TRUE(read_file(one() / opt6) == read_file(out / opt6));
}
