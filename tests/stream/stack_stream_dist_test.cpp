// `mpirun -np 2 onebit stack-stream` against the fake Hub (issue 15 under issue 18's data
// parallelism): each rank owns a share of every language's shards, downloads and reads only those
// under <local-root>/rank-R-of-2, within half the host's --disk-budget-gb. Rank 1 is killed with
// SIGKILL after a checkpoint; mpirun ends the job; the same command without mpirun (one process) is
// refused with one line saying why; the same command under mpirun resumes from every rank's saved
// position. The ranks' row logs prove that every row of the first epoch was trained exactly once
// over both ranks (each row by the rank owning its shard) and that each rank's replay after the
// resume repeated the same rows; a thread sampling the whole local root proves the host never held
// more than the budget. Skipped where mpirun is not installed.
#include <algorithm>
#include <set>

#include "onebit/stream/language_sampler.h"
#include "onebit/stream/shard_owner.h"
#include "mpirun.h"
#include "stack_stream_util.h"
#include "test_seed.h"

namespace onebit::stream {
namespace {

using namespace testing;
using StackStreamDist = StackStreamTest;
using onebit::test::find_mpirun;
using onebit::test::find_rank;

// The fixture's shards as the command's manifest lists them (sizes from the files).
Manifest fixture_manifest() {
  Manifest m;
  for (const auto& [path, rows] : fixture_rows())
    m.shards.push_back(Shard{*shard_language(path), path, fs::file_size(hub_fixture_dir() / path), "", std::nullopt});
  return m;
}

TEST_F(StackStreamDist, TwoRanksOwnTheirShardsAndAKilledRankResumesEveryRowOnce) {
  const std::string mpirun = find_mpirun();
  if (mpirun.empty()) GTEST_SKIP() << "mpirun is not installed (apt-get install openmpi-bin): skipped";
  cfg_.faults = json{{"storage:data/python/train-00000-of-00002.parquet", json::array({"drop:20000"})},
                     {"resolve:data/c/train-00001-of-00002.parquet", json::array({"503"})}};
  hub_ = std::make_unique<FakeHub>(cfg_, dir_);
  use_hub_env();
  const fs::path row_log = dir_ / "rows.log";
  env_["ONEBIT_STREAM_ROW_LOG"] = row_log.string();

  // Who owns what (the command's default mix: languages by bytes), and each rank's tokens.
  const auto rows = fixture_rows();
  const Manifest manifest = fixture_manifest();
  const std::vector<int> owner = shard_owners(manifest, weights_by_bytes(manifest), 2);
  std::map<std::string, int> owner_of;
  uint64_t tokens[2] = {0, 0}, largest = 0;
  for (size_t i = 0; i < manifest.shards.size(); ++i) {
    owner_of[manifest.shards[i].path] = owner[i];
    for (const auto& c : rows.at(manifest.shards[i].path)) tokens[owner[i]] += c.size() + 1;  // bytes + EOT
    largest = std::max(largest, manifest.shards[i].size);
  }
  ASSERT_GT(tokens[0], 0u);
  ASSERT_GT(tokens[1], 0u);
  const uint64_t budget = 2 * (largest + 4096);  // per rank: its largest shard, never two big ones
  const int B = 32, T = 64;
  // Both ranks through their first epoch and into the next.
  const uint64_t steps = std::max(tokens[0], tokens[1]) / (B * T) + 25;

  char budget_gb[32];
  std::snprintf(budget_gb, sizeof budget_gb, "%.9f", static_cast<double>(budget) / 1e9);
  const std::vector<std::string> args = {
      "stack-stream", "--dataset-id", cfg_.repo, "--local-root", "root", "--output-dir", "out",
      "--disk-budget-gb", budget_gb, "--model-config", std::string(ONEBIT_TEST_FIXTURES) + "/train/micro.json",
      "--tokenizer", "byte", "--batch-size", std::to_string(B), "--seq-len", std::to_string(T), "--threads", "1",
      "--save-every", "20", "--max-global-steps", std::to_string(steps)};
  std::vector<std::string> under_mpirun = {mpirun, "-np", "2", "--oversubscribe", "--bind-to", "none"};
  if (::geteuid() == 0) under_mpirun.push_back("--allow-run-as-root");  // CI runs as root
  under_mpirun.push_back(ONEBIT_BINARY);
  under_mpirun.insert(under_mpirun.end(), args.begin(), args.end());

  std::mt19937_64 rng(test::test_seed());  // kill points: replay with ONEBIT_TEST_SEED
  std::string all_output;
  uint64_t peak = 0;
  {
    DiskWatcher watch(dir_ / "root");
    // Rank 1 dies (SIGKILL) at a random step after the first checkpoint: mpirun ends the job.
    const size_t kill_at = std::uniform_int_distribution<size_t>(25, steps / 2)(rng);
    const pid_t job = spawn_argv(under_mpirun, "killed");
    while (metrics_lines() < kill_at) {
      int st = 0;
      ASSERT_EQ(::waitpid(job, &st, WNOHANG), 0) << "the job ended before step " << kill_at << ":\n"
                                                 << slurp(dir_ / "killed.err");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const pid_t victim = find_rank(job, 1);
    ASSERT_GT(victim, 0) << "rank 1 not found among mpirun's children";
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    EXPECT_NE(wait_status(job), 0);
    const std::string killed = slurp(dir_ / "killed.err");
    EXPECT_NE(killed.find("signal 9"), std::string::npos) << killed;
    all_output += killed;

    // One process cannot continue two ranks' positions: refused, one line, nothing trained.
    const size_t lines_before = metrics_lines();
    EXPECT_EQ(wait_status(spawn(args, "one")), 1);
    const auto err = lines_of(slurp(dir_ / "one.err"));
    ASSERT_FALSE(err.empty());
    EXPECT_EQ(err.back().rfind("onebit: error: ", 0), 0u) << err.back();
    EXPECT_NE(err.back().find("trainer_state.json: key \"data\": the data position was saved by 2 ranks"),
              std::string::npos)
        << err.back();
    EXPECT_NE(err.back().find("resumes on 2 ranks only, not on 1 rank"), std::string::npos) << err.back();
    EXPECT_EQ(metrics_lines(), lines_before);

    const int status = wait_status(spawn_argv(under_mpirun, "final"));
    all_output += slurp(dir_ / "final.err") + slurp(dir_ / "final.out");
    ASSERT_EQ(status, 0) << slurp(dir_ / "final.err");
    EXPECT_NE(slurp(dir_ / "final.err").find("resumed from"), std::string::npos);
    peak = watch.peak();
    EXPECT_GT(watch.samples(), 100u);
  }
  EXPECT_LE(peak, budget) << "bytes under --local-root (the host's) went over the budget";
  EXPECT_GT(peak, largest) << "the ranks never held shards at the same time";

  // Every row of epoch 0 exactly once over both ranks, each by the owner of its shard.
  std::map<std::pair<std::string, uint64_t>, int> epoch0;
  const json state = latest_state(dir_ / "out");
  for (int r = 0; r < 2; ++r) {
    const auto by_seq = read_row_log(dir_ / ("rows.log.rank-" + std::to_string(r) + "-of-2"));
    size_t epoch1 = 0;
    for (const auto& [seq, rest] : by_seq) {
      const LoggedRow row = parse_logged_row(rest);
      ASSERT_TRUE(owner_of.count(row.path)) << rest;
      EXPECT_EQ(owner_of.at(row.path), r) << "rank " << r << " trained " << rest;
      if (row.epoch == 0) {
        ASSERT_LT(row.row, rows.at(row.path).size()) << rest;
        ++epoch0[{row.path, row.row}];
      } else {
        ++epoch1;
      }
    }
    EXPECT_GT(epoch1, 0u) << "rank " << r << " did not go on into its second epoch";
    const json& mine = state["data"]["ranks"][r];
    EXPECT_EQ(mine["rank"], r);
    EXPECT_EQ(mine["rows_trained"].get<uint64_t>(), by_seq.size()) << "rank " << r;
  }
  EXPECT_EQ(epoch0.size(), 150u) << "not every row of the first epoch was trained";
  for (const auto& [key, count] : epoch0) EXPECT_EQ(count, 1) << key.first << " row " << key.second;

  EXPECT_EQ(state["data"]["kind"], "per_rank");
  EXPECT_EQ(state["data"]["world_size"], 2);
  EXPECT_EQ(state["world_size"], 2);
  EXPECT_EQ(state["step"].get<uint64_t>(), steps);
  // Each rank streamed into its own directory; nothing else landed under the local root.
  std::set<std::string> top;
  for (const auto& e : fs::directory_iterator(dir_ / "root")) top.insert(e.path().filename().string());
  EXPECT_EQ(top, (std::set<std::string>{"rank-0-of-2", "rank-1-of-2"}));
  expect_token_confined(all_output);
}

}  // namespace
}  // namespace onebit::stream
