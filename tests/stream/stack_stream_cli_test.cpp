// `onebit stack-stream` end to end against the fake Hub serving tests/fixtures/hub-fixture, with
// injected 429/500/reset/dropped-body faults and a disk budget that holds only the two largest
// shards. The run is killed with SIGKILL twice at random steps and resumed with the same command;
// ONEBIT_STREAM_ROW_LOG proves that every row of every shard (the empty markdown shards included)
// was trained exactly once in the first epoch, and that the replays after each resume were the
// same rows in the same order; a Ctrl-C in between saves and exits cleanly. A thread samples the
// local root all along: its peak never exceeds the budget. The token appears in no output, no file
// and no request to the storage host.
//
// What is covered where: the exactly-once proof over every row of the fixture (1.3M tokens), the
// faults and the two kills run on tests/fixtures/train/micro.json, because the tiny preset needs
// minutes for 1.3M tokens on two cores. The tiny preset itself (the model the issue names) runs
// end to end in TinyPresetTrainsAPrefixOfEveryShardKilledAndResumed: every fixture shard, a budget
// of two shards, one pass with its measured horizon, a SIGKILL and a resume, with --steps-per-shard
// bounding the tokens (a prefix of every shard) so that it stays near 30 s. Under mpirun:
// stack_stream_dist_test.cpp.
#include <set>

#include "stack_stream_util.h"

namespace onebit::stream {
namespace {

using namespace testing;
using StackStreamCli = StackStreamTest;

TEST_F(StackStreamCli, KilledTwiceEveryRowTrainedOnceWithinTheBudget) {
  // Transient faults on every stage; each is retried (the client's backoff) and survived.
  cfg_.faults = json{{"resolve:data/python/train-00000-of-00002.parquet", json::array({"429:1"})},
                     {"storage:data/python/train-00000-of-00002.parquet", json::array({"drop:20000"})},
                     {"storage:data/c/train-00001-of-00002.parquet", json::array({"500", "reset"})},
                     {"resolve:data/markdown/train-00001-of-00002.parquet", json::array({"503"})}};
  hub_ = std::make_unique<FakeHub>(cfg_, dir_);
  const fs::path row_log = dir_ / "rows.log";
  use_hub_env();
  env_["ONEBIT_STREAM_ROW_LOG"] = row_log.string();

  const auto rows = fixture_rows();
  ASSERT_EQ(rows.size(), 6u);
  uint64_t tokens = 0, n_rows = 0, biggest = 0, second = 0;
  for (const auto& [path, contents] : rows) {
    for (const auto& c : contents) tokens += c.size() + 1;  // byte tokenizer: a token per byte, + EOT
    n_rows += contents.size();
    const uint64_t size = fs::file_size(hub_fixture_dir() / path);
    if (size > biggest) std::swap(biggest, second), biggest = size;
    else if (size > second) second = size;
  }
  ASSERT_EQ(n_rows, 150u);
  ASSERT_EQ(rows.at("data/markdown/train-00000-of-00002.parquet").size(), 0u);
  const uint64_t budget = biggest + second;  // two shards at a time, never three
  const int B = 32, T = 64;
  const uint64_t steps = tokens / (B * T) + 25;  // one epoch and a little of the next

  char budget_gb[32];
  std::snprintf(budget_gb, sizeof budget_gb, "%.9f", static_cast<double>(budget) / 1e9);
  const std::vector<std::string> cmd = {
      "stack-stream", "--dataset-id", cfg_.repo, "--local-root", "root", "--output-dir", "out",
      "--disk-budget-gb", budget_gb, "--model-config",
      std::string(ONEBIT_TEST_FIXTURES) + "/train/micro.json", "--tokenizer", "byte", "--batch-size",
      std::to_string(B), "--seq-len", std::to_string(T), "--threads", "1", "--save-every", "40",
      "--max-global-steps", std::to_string(steps), "--download-parallel", "2"};

  std::mt19937 rng(std::random_device{}());
  std::string all_output;
  uint64_t peak = 0;
  {
    DiskWatcher watch(dir_ / "root");
    // Two runs killed at a random step (after some checkpoint, or before the first), then one to the end.
    const size_t kill_at[2] = {std::uniform_int_distribution<size_t>(10, steps / 3)(rng),
                               std::uniform_int_distribution<size_t>(steps / 3 + 10, 2 * steps / 3)(rng)};
    for (int run = 0; run < 2; ++run) {
      const pid_t pid = spawn(cmd, "run" + std::to_string(run));
      while (metrics_lines() < kill_at[run]) {
        int st = 0;
        ASSERT_EQ(::waitpid(pid, &st, WNOHANG), 0) << "run " << run << " ended before the kill at step " << kill_at[run]
                                                   << ":\n" << slurp(dir_ / ("run" + std::to_string(run) + ".err"));
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      ::kill(pid, SIGKILL);
      EXPECT_EQ(wait_status(pid), 128 + SIGKILL);
      all_output += slurp(dir_ / ("run" + std::to_string(run) + ".err"));
    }
    // Ctrl-C (SIGINT) saves a checkpoint at the step reached and exits 0, like `onebit train`.
    {
      const size_t at = std::uniform_int_distribution<size_t>(2 * steps / 3 + 10, 5 * steps / 6)(rng);
      const pid_t pid = spawn(cmd, "interrupted");
      while (metrics_lines() < at) {
        int st = 0;
        ASSERT_EQ(::waitpid(pid, &st, WNOHANG), 0) << slurp(dir_ / "interrupted.err");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      ::kill(pid, SIGINT);
      EXPECT_EQ(wait_status(pid), 0) << slurp(dir_ / "interrupted.err");
      const std::string err = slurp(dir_ / "interrupted.err");
      EXPECT_NE(err.find("checkpoint saved; run the same command again to resume"), std::string::npos) << err;
      all_output += err;
    }
    const int status = wait_status(spawn(cmd, "final"));
    all_output += slurp(dir_ / "final.err") + slurp(dir_ / "final.out");
    ASSERT_EQ(status, 0) << slurp(dir_ / "final.err");
    peak = watch.peak();
    EXPECT_GT(watch.samples(), 100u);
  }
  EXPECT_LE(peak, budget) << "bytes under --local-root went over the budget";
  EXPECT_GT(peak, biggest) << "the download-ahead never held two shards";

  // The row log: a resumed run replays from its checkpoint, always the same rows (read_row_log).
  const auto by_seq = read_row_log(row_log);
  ASSERT_FALSE(by_seq.empty());
  std::map<std::pair<std::string, uint64_t>, int> epoch0;
  size_t epoch1 = 0;
  for (const auto& [seq, rest] : by_seq) {
    const LoggedRow r = parse_logged_row(rest);
    if (r.epoch == 0) {
      ASSERT_TRUE(rows.count(r.path)) << r.path;
      ASSERT_LT(r.row, rows.at(r.path).size()) << r.path;
      ++epoch0[{r.path, r.row}];
    } else {
      ++epoch1;
    }
  }
  EXPECT_EQ(epoch0.size(), n_rows) << "not every row of the first epoch was trained";
  for (const auto& [key, count] : epoch0) EXPECT_EQ(count, 1) << key.first << " row " << key.second;
  EXPECT_GT(epoch1, 0u) << "the stream did not go on into the second epoch";

  // The final state says the same, and metrics.jsonl reports the data wait and the disk use.
  const json state = latest_state(dir_ / "out");
  EXPECT_EQ(state["data"]["kind"], "stack_stream");
  EXPECT_EQ(state["data"]["epoch"], 1);
  EXPECT_EQ(state["data"]["skipped"].size(), 0u);
  EXPECT_EQ(state["data"]["rows_trained"].get<uint64_t>(), by_seq.size());
  EXPECT_EQ(state["step"].get<uint64_t>(), steps);
  const auto metrics = lines_of(slurp(dir_ / "out" / "metrics.jsonl"));
  const std::string& last_line =
      metrics.back().find("\"loss\"") != std::string::npos ? metrics.back() : metrics[metrics.size() - 2];
  const json last = json::parse(last_line);
  EXPECT_TRUE(last.contains("data_wait_ms")) << last.dump();
  EXPECT_LE(last["disk_bytes"].get<uint64_t>(), budget);

  // The faults were met and survived; the token went nowhere but the Hub's own API.
  EXPECT_NE(all_output.find("429"), std::string::npos);
  EXPECT_NE(all_output.find("HTTP 500"), std::string::npos);
  EXPECT_EQ(all_output.find(cfg_.token), std::string::npos);
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out"))
    if (e.is_regular_file() && e.path().extension() != ".safetensors")
      EXPECT_EQ(slurp(e.path()).find(cfg_.token), std::string::npos) << e.path();
  for (const auto& r : hub_->requests_to("storage")) {
    EXPECT_FALSE(r["headers"].contains("Authorization")) << r.dump();
    EXPECT_EQ(r.dump().find(cfg_.token), std::string::npos) << r.dump();
  }
}

TEST_F(StackStreamCli, ManifestListsShardsAndARunTrainsFromIt) {
  hub_ = std::make_unique<FakeHub>(cfg_, dir_);
  use_hub_env();
  const int status =
      wait_status(spawn({"stack-stream", "manifest", "--dataset-id", cfg_.repo, "--output", "m.jsonl"}, "m"));
  const std::string out = slurp(dir_ / "m.out");
  ASSERT_EQ(status, 0) << slurp(dir_ / "m.err");
  const auto lines = lines_of(slurp(dir_ / "m.jsonl"));
  ASSERT_EQ(lines.size(), 6u);
  uint64_t python_bytes = 0;
  for (const auto& l : lines) {
    const json j = json::parse(l);
    const std::string path = j["path"];
    EXPECT_EQ(j["size"].get<uint64_t>(), fs::file_size(hub_fixture_dir() / path)) << path;
    EXPECT_EQ(j["sha256"].get<std::string>().size(), 64u);
    if (j["language"] == "python") python_bytes += j["size"].get<uint64_t>();
  }
  EXPECT_NE(out.find("python"), std::string::npos) << out;
  EXPECT_NE(out.find(std::to_string(python_bytes)), std::string::npos) << out;
  EXPECT_NE(out.find("markdown"), std::string::npos) << out;

  // Training from that manifest, python only, at most one step's tokens per shard: the row log shows
  // a prefix of each python shard and nothing else; the run pins the manifest it used.
  env_["ONEBIT_STREAM_ROW_LOG"] = (dir_ / "rows.log").string();
  const int trained = wait_status(spawn({"stack-stream", "--dataset-id", cfg_.repo, "--manifest", "m.jsonl",
                                         "--local-root", "root", "--output-dir", "run", "--disk-budget-gb", "0.001",
                                         "--model-config", std::string(ONEBIT_TEST_FIXTURES) + "/train/micro.json",
                                         "--tokenizer", "byte", "--batch-size", "4", "--seq-len", "64",
                                         "--languages", "python:1", "--steps-per-shard", "1",
                                         "--max-global-steps", "0", "--threads", "1"},
                                        "python"));
  ASSERT_EQ(trained, 0) << slurp(dir_ / "python.err");
  EXPECT_EQ(slurp(dir_ / "run" / "manifest.jsonl"), slurp(dir_ / "m.jsonl"));
  std::map<std::string, std::vector<uint64_t>> python_rows;
  for (const auto& l : lines_of(slurp(dir_ / "rows.log"))) {
    std::istringstream ls(l);
    uint64_t seq, epoch, row;
    std::string path;
    ls >> seq >> epoch >> path >> row;
    python_rows[path].push_back(row);
  }
  ASSERT_EQ(python_rows.size(), 2u);
  for (const auto& [path, got] : python_rows) {
    EXPECT_EQ(path.rfind("data/python/", 0), 0u) << path;
    ASSERT_FALSE(got.empty());
    EXPECT_LT(got.size(), 45u) << path;
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], i) << path;
  }
  // --max-global-steps 0: the pass (a capped prefix of two shards) fits the read-ahead sample, so
  // its tokens are counted, not estimated: the schedules' horizon is exactly its steps, logged.
  const auto rows = fixture_rows();
  uint64_t pass_tokens = 0;
  for (const auto& [path, got] : python_rows)
    for (uint64_t r : got) pass_tokens += rows.at(path).at(r).size() + 1;  // a token per byte, + EOT
  const uint64_t per_step = 4 * 64, horizon = (pass_tokens + per_step - 1) / per_step;
  const std::string log = slurp(dir_ / "python.err");
  EXPECT_NE(log.find("one pass over the data: about " + std::to_string(pass_tokens) + " tokens, " +
                     std::to_string(horizon) + " steps of 256 tokens"),
            std::string::npos)
      << log;
  const json state = latest_state(dir_ / "run");
  EXPECT_EQ(state["run"]["max_steps"], horizon);
  EXPECT_EQ(state["step"], horizon);
  env_.erase("ONEBIT_STREAM_ROW_LOG");

  // A bad model config is found after the listing, before anything is written.
  const int bad_config = wait_status(spawn({"stack-stream", "--dataset-id", cfg_.repo, "--local-root", "root",
                                            "--output-dir", "out", "--disk-budget-gb", "1", "--model-config",
                                            "no-such-config"},
                                           "bad_config"));
  EXPECT_EQ(bad_config, 1);
  const auto err_lines = lines_of(slurp(dir_ / "bad_config.err"));
  ASSERT_FALSE(err_lines.empty());
  EXPECT_EQ(err_lines.back().rfind("onebit: error: ", 0), 0u) << err_lines.back();
  EXPECT_NE(err_lines.back().find("no-such-config"), std::string::npos) << err_lines.back();
  EXPECT_FALSE(fs::exists(dir_ / "out"));

  // Bad flags: one error line naming the flag, nothing trained.
  const int bad = wait_status(spawn({"stack-stream", "--dataset-id", cfg_.repo, "--local-root", "root", "--output-dir",
                                     "out", "--disk-budget-gb", "0", "--model-config", "tiny"},
                                    "bad"));
  const std::string err = slurp(dir_ / "bad.err");
  EXPECT_EQ(bad, 1);
  EXPECT_EQ(err, "onebit: error: --disk-budget-gb must be a positive number of GB (got 0)\n");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(StackStreamCli, TinyPresetTrainsAPrefixOfEveryShardKilledAndResumed) {
  hub_ = std::make_unique<FakeHub>(cfg_, dir_);
  use_hub_env();
  const fs::path row_log = dir_ / "rows.log";
  env_["ONEBIT_STREAM_ROW_LOG"] = row_log.string();
  const int B = 8, T = 64, steps_per_shard = 4;
  const uint64_t cap = static_cast<uint64_t>(steps_per_shard) * B * T;

  // The pass: of each shard, rows in order until the cap is reached (the row that reaches it whole).
  const auto rows = fixture_rows();
  std::map<std::string, uint64_t> prefix;  // shard -> rows taken
  uint64_t pass_tokens = 0, biggest = 0, second = 0;
  for (const auto& [path, contents] : rows) {
    uint64_t taken = 0, tokens = 0;
    while (taken < contents.size() && tokens < cap) tokens += contents[taken++].size() + 1;  // bytes + EOT
    prefix[path] = taken;
    pass_tokens += tokens;
    const uint64_t size = fs::file_size(hub_fixture_dir() / path);
    if (size > biggest) std::swap(biggest, second), biggest = size;
    else if (size > second) second = size;
  }
  const uint64_t horizon = (pass_tokens + B * T - 1) / (B * T);
  ASSERT_GT(horizon, 30u);
  const uint64_t budget = biggest + second;
  char budget_gb[32];
  std::snprintf(budget_gb, sizeof budget_gb, "%.9f", static_cast<double>(budget) / 1e9);
  const std::vector<std::string> cmd = {
      "stack-stream", "--dataset-id", cfg_.repo, "--local-root", "root", "--output-dir", "out", "--disk-budget-gb",
      budget_gb, "--model-config", "tiny", "--tokenizer", "byte", "--batch-size", std::to_string(B), "--seq-len",
      std::to_string(T), "--threads", "1", "--save-every", "5", "--steps-per-shard", std::to_string(steps_per_shard),
      "--max-global-steps", "0"};

  std::mt19937 rng(std::random_device{}());
  uint64_t peak = 0;
  std::string log;
  {
    DiskWatcher watch(dir_ / "root");
    const size_t kill_at = std::uniform_int_distribution<size_t>(7, horizon / 2)(rng);
    const pid_t pid = spawn(cmd, "killed");
    while (metrics_lines() < kill_at) {
      int st = 0;
      ASSERT_EQ(::waitpid(pid, &st, WNOHANG), 0) << "ended before the kill at step " << kill_at << ":\n"
                                                 << slurp(dir_ / "killed.err");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::kill(pid, SIGKILL);
    EXPECT_EQ(wait_status(pid), 128 + SIGKILL);
    log = slurp(dir_ / "killed.err");
    const int status = wait_status(spawn(cmd, "final"));
    ASSERT_EQ(status, 0) << slurp(dir_ / "final.err");
    EXPECT_NE(slurp(dir_ / "final.err").find("resumed from"), std::string::npos);
    peak = watch.peak();
  }
  EXPECT_LE(peak, budget);
  // The horizon is the pass, counted (it fits the read-ahead sample), and the run reached it.
  EXPECT_NE(log.find("one pass over the data: about " + std::to_string(pass_tokens) + " tokens, " +
                     std::to_string(horizon) + " steps of 512 tokens"),
            std::string::npos)
      << log;
  const json state = latest_state(dir_ / "out");
  EXPECT_EQ(state["step"], horizon);
  EXPECT_EQ(state["run"]["max_steps"], horizon);

  // Of every shard exactly its prefix, each row once (the replay after the kill repeated the same rows).
  std::map<std::string, std::vector<uint64_t>> got;
  for (const auto& [seq, rest] : read_row_log(row_log)) {
    const LoggedRow r = parse_logged_row(rest);
    EXPECT_EQ(r.epoch, 0u) << rest;
    got[r.path].push_back(r.row);
  }
  for (const auto& [path, n] : prefix) {
    std::vector<uint64_t> want(n);
    for (uint64_t i = 0; i < n; ++i) want[i] = i;
    EXPECT_EQ(got[path], want) << path;
  }

  // The tiny preset learned, through every phase of its default schedule (spanning the horizon).
  std::vector<json> train;
  for (const auto& l : lines_of(slurp(dir_ / "out" / "metrics.jsonl")))
    if (l.find("\"loss\"") != std::string::npos) train.push_back(json::parse(l));
  ASSERT_GE(train.size(), horizon);
  std::set<std::string> phases;
  for (const auto& m : train) phases.insert(m["phase"].get<std::string>());
  EXPECT_EQ(phases, (std::set<std::string>{"fp", "soft", "hard"}));
  EXPECT_LT(train.back()["loss"].get<double>(), train.front()["loss"].get<double>() - 1.0);
  const json config = json::parse(slurp(dir_ / "out" / "config.json"));
  EXPECT_EQ(config["hidden_size"], 192);
  EXPECT_EQ(config["num_hidden_layers"], 4);
}

}  // namespace
}  // namespace onebit::stream
