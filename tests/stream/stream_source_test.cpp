// The stack-stream pipeline against the fake Hub serving tests/fixtures/hub-fixture: one pass
// yields exactly the token stream of every row (content + EOT) in epoch order, each row trained
// once; the bytes under the local root never exceed the budget; a state taken anywhere restores
// to the same batches; a shard that cannot be downloaded is skipped and recorded; a shard larger
// than the budget stops the run with an error naming --disk-budget-gb; --steps-per-shard takes a
// prefix of each shard. Under data parallelism two ranks' sources split the shards, download only
// their own within their share of the host's budget, and together read every row once. A new epoch
// reuses shards when the budget holds them all; the one-pass estimate of tokens is exact for a pass
// that fits the sample and a per-byte rate of the data otherwise. Also the shard order, the shard
// owners and the parquet row reader on their own.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "../hub/fake_hub.h"
#include "disk_watcher.h"
#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/data/tokenizer.h"
#include "onebit/hub/tree.h"
#include "onebit/stream/parquet_documents.h"
#include "onebit/stream/shard_order.h"
#include "onebit/stream/shard_owner.h"
#include "onebit/stream/stream_source.h"

namespace onebit::stream {
namespace {

using hub::testing::FakeHub;
using hub::testing::FakeHubConfig;
using hub::testing::hub_fixture_dir;
using testing::DiskWatcher;

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() /
               cat("onebit-stream-", name, "-", ::getpid(), "-", std::random_device{}());
  fs::create_directories(d);
  return d;
}

// The `content` of every row of a fixture file ("" for null), from its .expected.jsonl.
std::vector<std::string> expected_rows(const fs::path& parquet) {
  fs::path e = parquet;
  e.replace_extension(".expected.jsonl");
  std::vector<std::string> rows;
  std::ifstream in(e);
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line);
    rows.push_back(j["content"].is_null() ? std::string() : j["content"].get<std::string>());
  }
  return rows;
}

struct Env {
  FakeHubConfig cfg;
  fs::path dir = temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::unique_ptr<FakeHub> hub;
  Manifest manifest;
  std::unique_ptr<data::Tokenizer> tok = data::load_tokenizer("byte");
  static constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";

  explicit Env(json faults = json::object()) {
    cfg.faults = std::move(faults);
    hub = std::make_unique<FakeHub>(cfg, dir);
    hub::HubClient client(hub_options());
    manifest = manifest_from_listing(hub::list_dataset_files(client, cfg.repo, kCommit));
  }
  hub::HubOptions hub_options() const {
    hub::HubOptions o;
    o.endpoint = hub->endpoint();
    o.token = hub::HubToken{cfg.token, "test"};
    o.retry.max_attempts = 3;
    o.retry.base_delay_s = 0.01;
    return o;
  }
  ~Env() {
    hub.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  StreamConfig config(uint64_t budget) const {
    StreamConfig c;
    c.manifest = manifest;
    c.weights = weights_by_bytes(manifest);
    c.local_root = dir / "root";
    c.budget_bytes = budget;
    c.download.hub = hub_options();
    c.download.repo = cfg.repo;
    c.download.revision = kCommit;
    c.seed = 7;
    c.threads = 2;
    return c;
  }
  // The token stream one epoch must yield: each row's tokens and EOT, shards in epoch order.
  std::vector<int32_t> expected_stream(const StreamConfig& c, uint64_t epoch = 0) const {
    std::vector<int32_t> s;
    for (size_t i : epoch_order(c.manifest, c.weights, c.seed, epoch))
      for (const auto& row : expected_rows(hub_fixture_dir() / manifest.shards[i].path)) {
        const auto ids = tok->encode(row);
        s.insert(s.end(), ids.begin(), ids.end());
        s.push_back(*tok->eos_id());
      }
    return s;
  }
};

// The two largest fixture shards fit, three do not.
uint64_t two_shard_budget(const Manifest& m) {
  std::vector<uint64_t> sizes;
  for (const auto& s : m.shards) sizes.push_back(s.size);
  std::sort(sizes.rbegin(), sizes.rend());
  return sizes[0] + sizes[1];
}

struct Batch {
  std::vector<int32_t> in, tg;
};

Batch next(StreamSource& s, int B, int T) {
  Batch b{std::vector<int32_t>(static_cast<size_t>(B) * T), std::vector<int32_t>(static_cast<size_t>(B) * T)};
  s.next_batch(B, T, b.in.data(), b.tg.data());
  return b;
}

// Window w of a one-pass stream holds stream[wT .. wT+T] (inputs, then targets shifted by one);
// past the end, targets are -1.
void expect_windows(const std::vector<Batch>& batches, int B, int T, const std::vector<int32_t>& stream) {
  size_t w = 0;
  for (const auto& b : batches)
    for (int r = 0; r < B; ++r, ++w)
      for (int i = 0; i < T; ++i) {
        const size_t at = w * T + static_cast<size_t>(i);
        const size_t k = static_cast<size_t>(r) * T + static_cast<size_t>(i);
        if (at + 1 < stream.size()) {
          ASSERT_EQ(b.in[k], stream[at]) << "window " << w << " position " << i;
          ASSERT_EQ(b.tg[k], stream[at + 1]) << "window " << w << " position " << i;
        } else {
          ASSERT_EQ(b.tg[k], -1) << "window " << w << " position " << i << " is past the end";
        }
      }
  EXPECT_GE(w * T + 1, stream.size()) << "the stream ended before every token was a target";
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::vector<std::string> lines;
  std::ifstream in(p);
  std::string l;
  while (std::getline(in, l)) lines.push_back(l);
  return lines;
}

TEST(StreamSource, OnePassIsEveryRowOnceWithinTheBudget) {
  Env env;
  StreamConfig c = env.config(two_shard_budget(env.manifest));
  c.row_log = env.dir / "rows.log";
  const auto stream = env.expected_stream(c);
  const int B = 3, T = 97;
  std::vector<Batch> batches;
  uint64_t peak = 0;
  {
    DiskWatcher watch(c.local_root, std::chrono::milliseconds(1));
    StreamSource src(c, *env.tok);
    while (!src.at_end()) batches.push_back(next(src, B, T));
    const json m = src.step_metrics();
    EXPECT_EQ(m["shards_done"], 6);
    EXPECT_EQ(m["shards_skipped"], 0);
    EXPECT_LE(m["disk_bytes"].get<uint64_t>(), c.budget_bytes);
    peak = watch.peak();
  }
  expect_windows(batches, B, T, stream);
  EXPECT_LE(peak, c.budget_bytes);
  EXPECT_GT(peak, 0u);

  // Every row of every shard once, shard by shard in epoch order, rows in file order.
  std::vector<std::string> want;
  uint64_t seq = 0;
  for (size_t i : epoch_order(c.manifest, c.weights, c.seed, 0)) {
    const auto rows = expected_rows(hub_fixture_dir() / env.manifest.shards[i].path);
    for (size_t r = 0; r < rows.size(); ++r) want.push_back(cat(seq++, " 0 ", env.manifest.shards[i].path, " ", r));
  }
  EXPECT_EQ(want.size(), 150u);
  EXPECT_EQ(read_lines(c.row_log), want);
  // The fake Hub's storage never saw the token.
  for (const auto& r : env.hub->requests_to("storage"))
    EXPECT_FALSE(r["headers"].contains("Authorization")) << r.dump();
}

// Batches from a state taken before batch `at` equal those of the uninterrupted source.
void expect_same_after_restore(const Env& env, const StreamConfig& c, int B, int T, const std::vector<Batch>& whole,
                               const std::vector<json>& states, size_t at) {
  StreamSource src(c, *env.tok);
  src.restore(states[at]);
  EXPECT_EQ(src.state(), states[at]) << "restored at batch " << at;
  for (size_t k = at; k < whole.size(); ++k) {
    ASSERT_FALSE(src.at_end()) << "batch " << k;
    const Batch b = next(src, B, T);
    ASSERT_EQ(b.in, whole[k].in) << "batch " << k << " after a restore at " << at;
    ASSERT_EQ(b.tg, whole[k].tg) << "batch " << k << " after a restore at " << at;
  }
}

TEST(StreamSource, RestoreAnywhereGivesTheSameBatches) {
  Env env;
  const StreamConfig c = env.config(two_shard_budget(env.manifest));
  const int B = 2, T = 61;
  std::vector<Batch> whole;
  std::vector<json> states;
  {
    StreamSource src(c, *env.tok);
    while (!src.at_end()) {
      states.push_back(src.state());
      whole.push_back(next(src, B, T));
    }
  }
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 3; ++trial) {
    const size_t at = std::uniform_int_distribution<size_t>(1, whole.size() - 1)(rng);
    expect_same_after_restore(env, c, B, T, whole, states, at);
    StreamSource src(c, *env.tok);
    src.restore(states[at]);
    for (size_t k = at; k < whole.size(); ++k) next(src, B, T);
    EXPECT_TRUE(src.at_end());
  }
}

// The last rows of an epoch are trained while the reader is already in the next one: they are
// still logged (and saved) as rows of their own epoch and shard, and states taken around the
// boundary restore to the same batches.
TEST(StreamSource, RestoreAcrossAnEpochBoundary) {
  Env env;
  StreamConfig c = env.config(two_shard_budget(env.manifest));
  c.loop_epochs = true;
  // Shards that all have rows, and a seed whose epochs end on different shards, so that restoring
  // into the wrong epoch's order would show.
  c.weights = parse_language_weights("c:1,python:1", {"c", "markdown", "python"}, "--languages");
  while (epoch_order(c.manifest, c.weights, c.seed, 0).back() == epoch_order(c.manifest, c.weights, c.seed, 1).back())
    ++c.seed;
  const int B = 2, T = 200;
  const size_t n = env.expected_stream(c).size() / (static_cast<size_t>(B) * T) + 20;
  std::vector<Batch> whole;
  std::vector<json> states;
  {
    StreamConfig logged = c;
    logged.row_log = env.dir / "rows.log";
    StreamSource src(logged, *env.tok);
    for (size_t k = 0; k < n; ++k) {
      states.push_back(src.state());
      whole.push_back(next(src, B, T));
    }
    std::set<std::string> epoch0;
    for (const auto& l : read_lines(logged.row_log)) {
      std::istringstream ls(l);
      std::string seq, epoch, path, row;
      ls >> seq >> epoch >> path >> row;
      if (epoch == "0") {
        EXPECT_TRUE(epoch0.insert(path + " " + row).second) << l;
      }
    }
    EXPECT_EQ(epoch0.size(), 150u);  // every row (the markdown shards have none), each once
  }
  size_t first_new = 0;
  while (first_new < states.size() && states[first_new]["epoch"] == 0) ++first_new;
  ASSERT_LT(first_new, states.size());
  ASSERT_GT(first_new, 0u);
  for (size_t at : {first_new - 1, first_new, first_new + 1})
    expect_same_after_restore(env, c, B, T, whole, states, at);
}

TEST(StreamSource, RestoreRefusesAnotherLanguageMix) {
  Env env;
  const StreamConfig c = env.config(two_shard_budget(env.manifest));
  json state;
  {
    StreamSource src(c, *env.tok);
    next(src, 1, 32);
    state = src.state();
  }
  StreamConfig other = c;
  other.weights = parse_language_weights("python:1", {"c", "markdown", "python"}, "--languages");
  StreamSource src(other, *env.tok);
  try {
    src.restore(state);
    FAIL() << "a state saved with other --languages was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--languages"), std::string::npos) << e.what();
  }
}

TEST(StreamSource, ShardThatFailsForGoodIsSkippedAndRecorded) {
  const std::string bad = "data/c/train-00001-of-00002.parquet";
  // Transient faults on another shard are retried; the corrupt one fails its sha256 every time.
  Env env(json{{"storage:" + bad, json::array({"corrupt", "corrupt", "corrupt", "corrupt", "corrupt"})},
               {"storage:data/python/train-00000-of-00002.parquet", json::array({"500", "drop:1000"})},
               {"resolve:data/c/train-00000-of-00002.parquet", json::array({"429:0"})}});
  StreamConfig c = env.config(two_shard_budget(env.manifest));
  c.row_log = env.dir / "rows.log";
  json state;
  {
    StreamSource src(c, *env.tok);
    while (!src.at_end()) next(src, 4, 64);
    state = src.state();
  }
  ASSERT_EQ(state["skipped"].size(), 1u) << state.dump();
  EXPECT_EQ(state["skipped"][0]["path"], bad);
  std::set<std::string> shards_seen;
  size_t rows = 0;
  for (const auto& l : read_lines(c.row_log)) {
    std::istringstream ls(l);
    std::string seq, epoch, path;
    ls >> seq >> epoch >> path;
    shards_seen.insert(path);
    ++rows;
  }
  EXPECT_FALSE(shards_seen.count(bad));
  EXPECT_EQ(rows, 150u - 30u);
  EXPECT_FALSE(fs::exists(c.local_root / (bad + ".incomplete")));
}

TEST(StreamSource, ShardLargerThanTheBudgetIsAnError) {
  Env env;
  const StreamConfig c = env.config(100000);  // the python shards are larger
  StreamSource src(c, *env.tok);
  try {
    while (!src.at_end()) next(src, 4, 64);
    FAIL() << "a shard larger than the budget was streamed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--disk-budget-gb"), std::string::npos) << e.what();
  }
}

// Files that are not the stream's (another program's, a different dataset's) fill the local root so
// that the next shard can never fit: an error naming the budget, not a wait that never ends.
TEST(StreamSource, StrayFilesThatLeaveNoRoomAreAnError) {
  Env env;
  const StreamConfig c = env.config(two_shard_budget(env.manifest));
  fs::create_directories(c.local_root / "elsewhere");
  std::ofstream(c.local_root / "elsewhere" / "big.bin", std::ios::binary) << std::string(c.budget_bytes - 1000, 'x');
  StreamSource src(c, *env.tok);
  try {
    while (!src.at_end()) next(src, 4, 64);
    FAIL() << "the stream waited for room that stray files hold";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--disk-budget-gb"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not using"), std::string::npos) << msg;
  }
  EXPECT_TRUE(fs::exists(c.local_root / "elsewhere" / "big.bin"));  // not ours to delete
}

TEST(StreamSource, StepsPerShardTakesAPrefixOfEachShard) {
  Env env;
  StreamConfig c = env.config(two_shard_budget(env.manifest));
  c.shard_token_cap = 5000;
  c.row_log = env.dir / "rows.log";
  {
    StreamSource src(c, *env.tok);
    while (!src.at_end()) next(src, 2, 64);
  }
  std::map<std::string, std::vector<uint64_t>> rows;
  for (const auto& l : read_lines(c.row_log)) {
    std::istringstream ls(l);
    std::string seq, epoch, path;
    uint64_t row;
    ls >> seq >> epoch >> path >> row;
    rows[path].push_back(row);
  }
  for (const auto& s : env.manifest.shards) {
    const auto want = expected_rows(hub_fixture_dir() / s.path);
    if (want.empty()) continue;
    const auto& got = rows[s.path];
    uint64_t tokens = 0;
    for (size_t r = 0; r < got.size(); ++r) {
      EXPECT_EQ(got[r], r) << s.path;  // a prefix, in order
      tokens += env.tok->encode(want[r]).size() + 1;
    }
    // Rows are taken until the cap is reached: at least the cap, less than the cap plus the last row.
    const bool whole = got.size() == want.size();
    if (!whole) {
      EXPECT_GE(tokens, c.shard_token_cap) << s.path;
      EXPECT_LT(tokens - (env.tok->encode(want[got.size() - 1]).size() + 1), c.shard_token_cap) << s.path;
    }
    EXPECT_LT(got.size(), want.size()) << s.path << ": a fixture shard has more than 5000 tokens";
  }
}

TEST(StreamSource, LoopsIntoTheNextEpochInANewOrder) {
  Env env;
  StreamConfig c = env.config(two_shard_budget(env.manifest));
  c.loop_epochs = true;
  c.row_log = env.dir / "rows.log";
  const auto epoch0 = env.expected_stream(c, 0);
  const int B = 4, T = 128;
  StreamSource src(c, *env.tok);
  const size_t batches = epoch0.size() / (static_cast<size_t>(B) * T) + 40;
  for (size_t i = 0; i < batches; ++i) {
    ASSERT_FALSE(src.at_end());
    next(src, B, T);
  }
  EXPECT_EQ(src.state()["epoch"], 1);
  size_t epoch1_rows = 0;
  for (const auto& l : read_lines(c.row_log)) epoch1_rows += l.find(" 1 data/") != std::string::npos;
  EXPECT_GT(epoch1_rows, 0u);
  // The seed of each epoch only moves the starting credits, so some epochs repeat an order of so
  // few shards; not all of them.
  bool some_differ = false;
  for (uint64_t e = 1; e < 8; ++e)
    some_differ |= epoch_order(c.manifest, c.weights, c.seed, e) != epoch_order(c.manifest, c.weights, c.seed, 0);
  EXPECT_TRUE(some_differ);
}

// Requests to the fake Hub's resolve endpoint per shard path: one per download started.
std::map<std::string, int> resolves(const FakeHub& hub) {
  std::map<std::string, int> n;
  for (const auto& r : hub.requests_to("main")) {
    const std::string path = r["path"];
    const size_t at = path.find("/data/");
    if (path.find("/resolve/") != std::string::npos && at != std::string::npos) ++n[path.substr(at + 1)];
  }
  return n;
}

TEST(StreamSource, TwoRanksSplitTheShardsAndTogetherReadEveryRowOnce) {
  Env env;
  uint64_t largest = 0;
  for (const auto& s : env.manifest.shards) largest = std::max(largest, s.size);
  const uint64_t host_budget = 2 * (largest + 4096);  // each rank's share holds its largest shard, not two
  const std::vector<int> owner = shard_owners(env.manifest, weights_by_bytes(env.manifest), 2);
  json metrics[2];
  std::string errors[2];
  uint64_t peak = 0;
  {
    DiskWatcher watch(env.dir / "root", std::chrono::milliseconds(1));
    std::vector<std::thread> ranks;
    for (int r = 0; r < 2; ++r)
      ranks.emplace_back([&, r] {
        try {
          StreamConfig c = env.config(host_budget);
          c.rank = r;
          c.world = 2;
          c.local_world = 2;
          c.row_log = env.dir / "rows.log";
          StreamSource src(c, *env.tok);
          while (!src.at_end()) next(src, 2, 64);
          metrics[r] = src.step_metrics();
          metrics[r]["state"] = src.state();
        } catch (const std::exception& e) {
          errors[r] = e.what();
        }
      });
    for (auto& t : ranks) t.join();
    peak = watch.peak();
  }
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  EXPECT_LE(peak, host_budget) << "the host's bytes went over the budget";
  std::set<std::string> all_rows;
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(metrics[r]["disk_budget"], host_budget / 2);
    EXPECT_EQ(metrics[r]["state"]["rank"], r);
    uint64_t owned_bytes = 0, owned_shards = 0;
    for (size_t i = 0; i < owner.size(); ++i)
      if (owner[i] == r) owned_bytes += env.manifest.shards[i].size, ++owned_shards;
    EXPECT_EQ(metrics[r]["shards_total"], owned_shards);
    EXPECT_EQ(metrics[r]["downloaded_bytes"], owned_bytes) << "rank " << r << " downloaded other shards";
    for (const auto& l : read_lines(env.dir / cat("rows.log.rank-", r, "-of-2"))) {
      std::istringstream ls(l);
      std::string seq, epoch, path, row;
      ls >> seq >> epoch >> path >> row;
      const auto it = std::find_if(env.manifest.shards.begin(), env.manifest.shards.end(),
                                   [&](const Shard& s) { return s.path == path; });
      ASSERT_NE(it, env.manifest.shards.end()) << l;
      EXPECT_EQ(owner[static_cast<size_t>(it - env.manifest.shards.begin())], r) << "rank " << r << " read " << path;
      EXPECT_TRUE(all_rows.insert(path + " " + row).second) << "read twice: " << l;
    }
  }
  EXPECT_EQ(all_rows.size(), 150u);
  for (const auto& [path, n] : resolves(*env.hub)) EXPECT_EQ(n, 1) << path << " was downloaded " << n << " times";
  EXPECT_EQ(resolves(*env.hub).size(), 6u);
  // Each rank's files went to its own directory.
  EXPECT_TRUE(fs::is_directory(env.dir / "root" / "rank-0-of-2"));
  EXPECT_TRUE(fs::is_directory(env.dir / "root" / "rank-1-of-2"));
  EXPECT_FALSE(fs::exists(env.dir / "root" / "data"));
}

TEST(StreamSource, MoreRanksThanShardsIsAnError) {
  Env env;
  StreamConfig c = env.config(two_shard_budget(env.manifest));
  c.weights = parse_language_weights("python:1", {"c", "markdown", "python"}, "--languages");
  c.rank = 2;
  c.world = 3;
  try {
    StreamSource src(c, *env.tok);
    FAIL() << "rank 2 of 3 with 2 python shards was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "stack-stream: rank 2 of 3 owns no shard: the languages streamed have 2 shards for 3 ranks; run at most "
              "2 ranks");
  }
}

TEST(StreamSource, ASecondEpochReusesTheShardsWhenTheBudgetHoldsThemAll) {
  Env env;
  uint64_t all = 0;
  for (const auto& s : env.manifest.shards) all += s.size;
  StreamConfig c = env.config(all);
  c.loop_epochs = true;
  const auto epoch0 = env.expected_stream(c, 0);
  const int B = 4, T = 128;
  const size_t per_epoch = epoch0.size() / (static_cast<size_t>(B) * T);
  json mid_epoch1;
  {
    StreamSource src(c, *env.tok);
    while (src.state()["epoch"] == 0) next(src, B, T);
    for (size_t i = 0; i < per_epoch / 2; ++i) next(src, B, T);
    mid_epoch1 = src.state();
    EXPECT_EQ(mid_epoch1["epoch"], 1);
  }
  for (const auto& [path, n] : resolves(*env.hub)) EXPECT_EQ(n, 1) << path << ": downloaded again in epoch 1";
  // A resume in the middle of epoch 1 keeps the shards done this epoch too, and reads to the end of
  // epoch 2 without a download.
  StreamSource src(c, *env.tok);
  src.restore(mid_epoch1);
  while (src.state()["epoch"] != 3) next(src, B, T);
  for (const auto& [path, n] : resolves(*env.hub)) EXPECT_EQ(n, 1) << path << ": downloaded again";
  EXPECT_EQ(resolves(*env.hub).size(), 6u);

  // With room for two shards only, the next epoch downloads again what it evicted.
  Env small;
  StreamConfig d = small.config(two_shard_budget(small.manifest));
  d.loop_epochs = true;
  StreamSource tight(d, *small.tok);
  while (tight.state()["epoch"] != 2) next(tight, B, T);
  int again = 0;
  for (const auto& [path, n] : resolves(*small.hub)) again += n > 1;
  EXPECT_GT(again, 0);
}

TEST(StreamSource, PassEstimateIsExactWhenSampledWholeAndARateOfTheDataOtherwise) {
  Env env;
  const StreamConfig c = env.config(two_shard_budget(env.manifest));
  const auto stream = env.expected_stream(c);
  {
    // The whole pass fits the sample: counted, and still every token is trained afterwards.
    StreamSource src(c, *env.tok);
    EXPECT_EQ(src.estimate_pass_tokens(uint64_t{1} << 22), stream.size());
    std::vector<Batch> batches;
    while (!src.at_end()) batches.push_back(next(src, 3, 97));
    expect_windows(batches, 3, 97, stream);
  }
  // A small sample: tokens per byte of what was read, applied to every shard's bytes. The fixture's
  // shards range from about 1 to 3 tokens per parquet byte: the estimate lies within the rates of
  // the shards with rows, times the bytes of all of them.
  double lo = 1e9, hi = 0, bytes = 0;
  for (const auto& s : env.manifest.shards) {
    bytes += static_cast<double>(s.size);
    const auto rows = expected_rows(hub_fixture_dir() / s.path);
    if (rows.empty()) continue;
    double t = 0;
    for (const auto& r : rows) t += static_cast<double>(env.tok->encode(r).size() + 1);
    lo = std::min(lo, t / static_cast<double>(s.size));
    hi = std::max(hi, t / static_cast<double>(s.size));
  }
  StreamSource src(c, *env.tok);
  const double estimate = static_cast<double>(src.estimate_pass_tokens(20000));
  EXPECT_NE(estimate, static_cast<double>(stream.size()));
  EXPECT_GE(estimate, lo * bytes * 0.5);  // the first rows of a shard may be shorter than its mean
  EXPECT_LE(estimate, hi * bytes * 2.0);
  std::vector<Batch> batches;
  while (!src.at_end()) batches.push_back(next(src, 3, 97));
  expect_windows(batches, 3, 97, stream);
}

TEST(ShardOwner, EveryStreamedShardHasOneOwnerAndEveryRankEachLanguage) {
  Manifest m;
  const char* langs[] = {"c", "python", "rust"};
  for (int l = 0; l < 3; ++l)
    for (int k = 0; k < 7; ++k)
      m.shards.push_back(Shard{langs[l], cat("data/", langs[l], "/train-0000", k, "-of-00007.parquet"),
                               static_cast<uint64_t>(1000 + 37 * ((k * 5 + l) % 7)), "", std::nullopt});
  const auto weights = parse_language_weights("c:1,python:2", {"c", "python", "rust"}, "--languages");
  for (int world : {1, 2, 3, 7}) {
    const std::vector<int> owner = shard_owners(m, weights, world);
    EXPECT_EQ(owner, shard_owners(m, weights, world)) << "not deterministic";
    std::map<int, std::map<std::string, uint64_t>> bytes;  // rank -> language -> bytes
    for (size_t i = 0; i < m.shards.size(); ++i) {
      if (m.shards[i].language == "rust") {
        EXPECT_EQ(owner[i], -1) << "rust is not streamed";
        continue;
      }
      ASSERT_GE(owner[i], 0);
      ASSERT_LT(owner[i], world);
      bytes[owner[i]][m.shards[i].language] += m.shards[i].size;
    }
    ASSERT_EQ(bytes.size(), static_cast<size_t>(world)) << "a rank owns nothing";
    for (const char* lang : {"c", "python"}) {
      uint64_t lo = UINT64_MAX, hi = 0;
      for (auto& [r, per] : bytes) lo = std::min(lo, per[lang]), hi = std::max(hi, per[lang]);
      // Largest first to the lightest rank: the ranks' bytes of a language differ by at most one shard.
      EXPECT_LE(hi - lo, 1000u + 37 * 6) << lang << " over " << world << " ranks";
    }
  }
  // A shard order restricted to one rank's shards keeps the interleaving, over its shards only.
  const std::vector<int> owner = shard_owners(m, weights, 2);
  std::vector<bool> mine(owner.size());
  for (size_t i = 0; i < owner.size(); ++i) mine[i] = owner[i] == 1;
  for (size_t i : epoch_order(m, weights, 3, 0, mine)) EXPECT_EQ(owner[i], 1);
  EXPECT_EQ(epoch_order(m, weights, 3, 0, mine).size(),
            static_cast<size_t>(std::count(owner.begin(), owner.end(), 1)));
}

TEST(ShardOrder, EveryShardOnceLanguagesInterleavedByWeight) {
  Manifest m;
  for (int i = 0; i < 30; ++i)
    m.shards.push_back(Shard{"python", cat("data/python/train-", 100 + i, "-of-999.parquet"), 10, "", {}});
  for (int i = 0; i < 10; ++i)
    m.shards.push_back(Shard{"c", cat("data/c/train-", 100 + i, "-of-999.parquet"), 10, "", {}});
  const auto w = parse_language_weights("python:3,c:1", {"c", "python"}, "--languages");
  const auto order = epoch_order(m, w, 1, 0);
  ASSERT_EQ(order.size(), 40u);
  EXPECT_EQ(std::set<size_t>(order.begin(), order.end()).size(), 40u);
  // Within each language, manifest order; every prefix within one pick of 3:1.
  size_t py = 0, c = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    if (m.shards[order[k]].language == "python") EXPECT_EQ(order[k], py++);
    else EXPECT_EQ(order[k], 30 + c++);
    EXPECT_LE(std::abs(static_cast<double>(py) - 0.75 * static_cast<double>(k + 1)), 1.0) << "after " << k + 1;
  }
  EXPECT_EQ(epoch_order(m, w, 1, 0), order);
  const auto only_c = epoch_order(m, parse_language_weights("c:1", {"c", "python"}, "--languages"), 1, 0);
  EXPECT_EQ(only_c.size(), 10u);
}

TEST(ParquetDocuments, StartsAtAnyRowAcrossRowGroups) {
  const fs::path file = fs::path(ONEBIT_TEST_FIXTURES) / "parquet" / "row_groups.parquet";
  const auto want = expected_rows(file);
  ASSERT_EQ(want.size(), 50u);
  for (uint64_t start : {0, 1, 6, 7, 8, 20, 49, 50}) {
    ParquetDocuments docs(file, "content", start);
    data::Document d;
    uint64_t row = start;
    while (docs.next(d)) {
      ASSERT_LT(row, want.size());
      EXPECT_EQ(d.text, want[row]) << "row " << row << " starting at " << start;
      EXPECT_EQ(d.offset, row);
      EXPECT_EQ(d.next_offset, row + 1);
      ++row;
    }
    EXPECT_EQ(row, want.size()) << "starting at " << start;
  }
  EXPECT_THROW(ParquetDocuments(file, "content", 51), Error);
  EXPECT_THROW(ParquetDocuments(file, "no_such_column", 0), Error);
}

TEST(ParquetDocuments, NullsAreEmptyDocuments) {
  const fs::path file = fs::path(ONEBIT_TEST_FIXTURES) / "parquet" / "nulls_v1.parquet";
  const auto want = expected_rows(file);
  ParquetDocuments docs(file, "content", 0);
  data::Document d;
  size_t row = 0, nulls = 0;
  while (docs.next(d)) {
    ASSERT_LT(row, want.size());
    EXPECT_EQ(d.text, want[row]);
    nulls += want[row].empty();
    ++row;
  }
  EXPECT_EQ(row, want.size());
  EXPECT_GT(nulls, 0u);
  EXPECT_EQ(docs.stats().empty, nulls);
}

}  // namespace
}  // namespace onebit::stream
