// The Hub client against a fake Hub on 127.0.0.1 (tests/hub/fake_hub.py): listing with pagination,
// downloads through a redirect to a storage server that must never see the token, Range resume,
// retries with Retry-After, content checks, the gated-dataset message and token resolution.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>

#include "fake_hub.h"
#include "onebit/core/error.h"
#include "onebit/hub/client.h"
#include "onebit/hub/download.h"
#include "onebit/hub/retry.h"
#include "onebit/hub/token.h"
#include "onebit/hub/tree.h"
#include "onebit/hub/url.h"

namespace onebit::hub {
namespace {

namespace fs = std::filesystem;
using testing::FakeHub;
using testing::FakeHubConfig;
using testing::hub_fixture_dir;

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("onebit-hub-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(std::random_device{}()) + "-" + info->name());
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

// Every file under the fixture directory: path -> size.
std::map<std::string, uint64_t> fixture_files() {
  std::map<std::string, uint64_t> out;
  for (const auto& e : fs::recursive_directory_iterator(hub_fixture_dir()))
    if (e.is_regular_file()) out[fs::relative(e.path(), hub_fixture_dir()).generic_string()] = e.file_size();
  return out;
}

// Retries without real waiting: the requested waits are recorded instead.
struct RecordedSleeps {
  std::mutex mu;
  std::vector<double> seconds;
};

HubOptions options_for(const FakeHub& hub, const FakeHubConfig& cfg, RecordedSleeps* sleeps = nullptr) {
  HubOptions o;
  o.endpoint = hub.endpoint();
  o.token = HubToken{cfg.token, "test"};
  o.retry.max_attempts = 5;
  o.retry.base_delay_s = 0.01;
  o.retry.uniform01 = [] { return 0.0; };
  o.retry.sleep = [sleeps](double s) {
    if (!sleeps) return;
    std::lock_guard<std::mutex> lock(sleeps->mu);
    sleeps->seconds.push_back(s);
  };
  o.timeouts.connect_s = 5;
  o.timeouts.low_speed_s = 5;
  return o;
}

RepoFile find_file(const std::vector<RepoFile>& files, const std::string& path) {
  for (const auto& f : files)
    if (f.path == path) return f;
  ADD_FAILURE() << "no " << path << " in the listing";
  return {};
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an onebit::Error";
  return "";
}

const char* kPythonShard = "data/python/train-00000-of-00002.parquet";
const char* kJsonlFile = "data/c/train-00000-of-00002.expected.jsonl";

TEST(HubTree, ListingFollowsEveryPageAndMatchesTheFixtures) {
  TempDir tmp;
  FakeHubConfig cfg;
  FakeHub hub(cfg, tmp.path());
  HubClient client(options_for(hub, cfg));
  const auto files = list_dataset_files(client, cfg.repo, "main");

  std::map<std::string, uint64_t> listed;
  for (const auto& f : files) listed[f.path] = f.size;
  EXPECT_EQ(listed, fixture_files());

  // The parquet shards are LFS files whose size and sha256 are those of fixtures.json's files.
  const auto manifest = nlohmann::json::parse(slurp(hub_fixture_dir() / "fixtures.json"));
  ASSERT_EQ(manifest.size(), 6u);
  for (const auto& m : manifest) {
    const RepoFile f = find_file(files, m["path"]);
    EXPECT_TRUE(f.is_lfs()) << f.path;
    EXPECT_EQ(f.size, m["bytes"].get<uint64_t>()) << f.path;
    EXPECT_EQ(f.size, fs::file_size(hub_fixture_dir() / f.path));
  }
  EXPECT_FALSE(find_file(files, "fixtures.json").is_lfs());

  // 13 files and 4 directories in pages of 2: 9 pages, each with the token.
  const auto tree_requests = hub.requests_to("main");
  EXPECT_EQ(tree_requests.size(), 9u);
  for (const auto& r : tree_requests) EXPECT_EQ(r["headers"]["Authorization"], "Bearer " + cfg.token);
}

TEST(HubTree, ALargePageIsReadWhole) {
  TempDir tmp;
  FakeHubConfig cfg;
  cfg.page_size = 1000;
  cfg.faults = {{"tree", {"pad:300000"}}};  // a page past any error-body cap
  FakeHub hub(cfg, tmp.path());
  HubClient client(options_for(hub, cfg));
  EXPECT_EQ(list_dataset_files(client, cfg.repo, "main").size(), fixture_files().size());
  EXPECT_EQ(hub.requests().size(), 1u);
}

TEST(HubTree, RevisionIsEscapedAndPathNarrowsTheListing) {
  TempDir tmp;
  FakeHubConfig cfg;
  FakeHub hub(cfg, tmp.path());
  HubClient client(options_for(hub, cfg));
  const auto files = list_dataset_files(client, cfg.repo, "refs/convert/parquet", "data/c");
  std::set<std::string> paths;
  for (const auto& f : files) paths.insert(f.path);
  EXPECT_EQ(paths, (std::set<std::string>{"data/c/train-00000-of-00002.parquet", "data/c/train-00001-of-00002.parquet",
                                          "data/c/train-00000-of-00002.expected.jsonl",
                                          "data/c/train-00001-of-00002.expected.jsonl"}));
  const auto reqs = hub.requests_to("main");
  ASSERT_FALSE(reqs.empty());
  EXPECT_NE(reqs[0]["path"].get<std::string>().find("/tree/refs%2Fconvert%2Fparquet/data/c?recursive=true"),
            std::string::npos)
      << reqs[0]["path"];

  const std::string err = error_of([&] { list_dataset_files(client, cfg.repo, "no-such-branch"); });
  EXPECT_NE(err.find("not found (HTTP 404"), std::string::npos) << err;

  // A branch pinned to its commit lists the same files.
  const std::string commit = resolve_dataset_commit(client, cfg.repo, "refs/convert/parquet");
  EXPECT_EQ(commit, "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(hub.requests_to("main").back()["path"], "/api/datasets/" + cfg.repo + "/revision/refs%2Fconvert%2Fparquet");
  EXPECT_EQ(list_dataset_files(client, cfg.repo, commit, "data/c").size(), 4u);
  EXPECT_NE(error_of([&] { resolve_dataset_commit(client, cfg.repo, "nope"); }).find("HTTP 404"), std::string::npos);
}

TEST(HubDownload, EveryFileEqualsTheFixtureAndTheTokenNeverReachesStorage) {
  TempDir tmp;
  FakeHubConfig cfg;
  FakeHub hub(cfg, tmp.path());
  const HubOptions opts = options_for(hub, cfg);
  HubClient client(opts);
  const auto files = list_dataset_files(client, cfg.repo, "main");
  const fs::path out = tmp.path() / "out";
  download_files(opts, cfg.repo, "main", files, out, DownloadOptions{.max_parallel = 3, .progress = false});

  for (const auto& [path, size] : fixture_files()) {
    ASSERT_TRUE(fs::exists(out / path)) << path;
    EXPECT_EQ(slurp(out / path), slurp(hub_fixture_dir() / path)) << path;
  }
  for (const auto& e : fs::recursive_directory_iterator(out))
    EXPECT_EQ(e.path().string().find(".incomplete"), std::string::npos) << e.path();

  // The six parquet files came from storage through the redirect, without Authorization.
  const auto storage = hub.requests_to("storage");
  EXPECT_EQ(storage.size(), 6u);
  for (const auto& r : storage) {
    EXPECT_FALSE(r["headers"].contains("Authorization")) << r.dump();
    EXPECT_EQ(r.dump().find(cfg.token), std::string::npos) << r.dump();
  }
  for (const auto& r : hub.requests_to("main")) EXPECT_EQ(r["headers"]["Authorization"], "Bearer " + cfg.token);

  // A second run finds every file complete and asks nothing.
  const size_t before = hub.requests().size();
  download_files(opts, cfg.repo, "main", files, out, DownloadOptions{.max_parallel = 2, .progress = false});
  EXPECT_EQ(hub.requests().size(), before);
}

TEST(HubDownload, ParallelDownloadsStayWithinTheLimit) {
  TempDir tmp;
  FakeHubConfig cfg;
  const auto manifest = nlohmann::json::parse(slurp(hub_fixture_dir() / "fixtures.json"));
  for (const auto& m : manifest) cfg.faults["storage:" + m["path"].get<std::string>()] = {"slow:0.3"};
  FakeHub hub(cfg, tmp.path());
  const HubOptions opts = options_for(hub, cfg);
  HubClient client(opts);
  std::vector<RepoFile> shards;
  for (const auto& f : list_dataset_files(client, cfg.repo, "main"))
    if (f.is_lfs()) shards.push_back(f);
  ASSERT_EQ(shards.size(), 6u);
  download_files(opts, cfg.repo, "main", shards, tmp.path() / "out",
                 DownloadOptions{.max_parallel = 2, .progress = false});
  int max_inflight = 0;
  for (const auto& r : hub.requests_to("storage")) max_inflight = std::max(max_inflight, r["inflight"].get<int>());
  // Each storage answer takes 0.3 s, so two workers overlap; a third never starts.
  EXPECT_EQ(max_inflight, 2);
  for (const auto& f : shards) EXPECT_EQ(slurp(tmp.path() / "out" / f.path), slurp(hub_fixture_dir() / f.path));
}

TEST(HubDownload, ResumesWithRangeAfterADroppedConnection) {
  TempDir tmp;
  FakeHubConfig cfg;
  cfg.faults = {{std::string("storage:") + kPythonShard, {"drop:50000", "drop:70000"}},
                {std::string("resolve:") + kJsonlFile, {"drop:100"}}};
  FakeHub hub(cfg, tmp.path());
  RecordedSleeps sleeps;
  HubClient client(options_for(hub, cfg, &sleeps));
  const auto files = list_dataset_files(client, cfg.repo, "main");
  for (const char* path : {kPythonShard, kJsonlFile}) {
    download_file(client, cfg.repo, "main", find_file(files, path), tmp.path() / path);
    EXPECT_EQ(slurp(tmp.path() / path), slurp(hub_fixture_dir() / path)) << path;
  }
  const auto storage = hub.requests_to("storage");
  ASSERT_EQ(storage.size(), 3u);
  EXPECT_FALSE(storage[0]["headers"].contains("Range"));
  EXPECT_EQ(storage[1]["headers"]["Range"], "bytes=50000-");
  EXPECT_EQ(storage[2]["headers"]["Range"], "bytes=120000-");
  // The file kept in git is served by the Hub itself: the resumed request carries the token and Range.
  std::vector<nlohmann::json> jsonl;
  for (const auto& r : hub.requests_to("main"))
    if (r["path"].get<std::string>().find("expected.jsonl") != std::string::npos) jsonl.push_back(r);
  ASSERT_EQ(jsonl.size(), 2u);
  EXPECT_EQ(jsonl[1]["headers"]["Range"], "bytes=100-");
  EXPECT_EQ(sleeps.seconds.size(), 3u);
}

TEST(HubDownload, PartialFileFromAnEarlierRunIsResumedAndAnIgnoredRangeRestarts) {
  TempDir tmp;
  FakeHubConfig cfg;
  cfg.faults = {{std::string("storage:") + kPythonShard, {"ignore-range"}}};
  FakeHub hub(cfg, tmp.path());
  HubClient client(options_for(hub, cfg));
  const auto files = list_dataset_files(client, cfg.repo, "main");
  const std::string want = slurp(hub_fixture_dir() / kPythonShard);
  const fs::path dest = tmp.path() / "shard.parquet";
  spit(tmp.path() / "shard.parquet.incomplete", want.substr(0, 1000));
  // The server answers the Range request with the whole file (200): the client starts over.
  download_file(client, cfg.repo, "main", find_file(files, kPythonShard), dest);
  EXPECT_EQ(slurp(dest), want);
  const auto storage = hub.requests_to("storage");
  ASSERT_EQ(storage.size(), 1u);
  EXPECT_EQ(storage[0]["headers"]["Range"], "bytes=1000-");

  // And with a server that honours it, only the rest is fetched.
  fs::remove(dest);
  spit(tmp.path() / "shard.parquet.incomplete", want.substr(0, 4096));
  download_file(client, cfg.repo, "main", find_file(files, kPythonShard), dest);
  EXPECT_EQ(slurp(dest), want);
  EXPECT_EQ(hub.requests_to("storage").back()["headers"]["Range"], "bytes=4096-");
}

TEST(HubRetry, Retries429And5xxHonouringRetryAfter) {
  TempDir tmp;
  FakeHubConfig cfg;
  cfg.faults = {{"tree", {"429:3", "500"}}, {std::string("storage:") + kPythonShard, {"reset", "503", "429:2"}}};
  FakeHub hub(cfg, tmp.path());
  RecordedSleeps sleeps;
  HubClient client(options_for(hub, cfg, &sleeps));
  ::testing::internal::CaptureStderr();
  const auto files = list_dataset_files(client, cfg.repo, "main");
  download_file(client, cfg.repo, "main", find_file(files, kPythonShard), tmp.path() / "x.parquet");
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(slurp(tmp.path() / "x.parquet"), slurp(hub_fixture_dir() / kPythonShard));
  // Retry-After 3, then the 2nd exponential step (base 0.01 * 2, half fixed with jitter 0); for the
  // download, the 1st step after the reset connection (the first to the storage host, so libcurl
  // cannot hide it by reconnecting on its own), the 2nd after the 503, then Retry-After 2.
  ASSERT_EQ(sleeps.seconds.size(), 5u);
  EXPECT_DOUBLE_EQ(sleeps.seconds[0], 3.0);
  EXPECT_DOUBLE_EQ(sleeps.seconds[1], 0.01);
  EXPECT_DOUBLE_EQ(sleeps.seconds[2], 0.005);
  EXPECT_DOUBLE_EQ(sleeps.seconds[3], 0.01);
  EXPECT_DOUBLE_EQ(sleeps.seconds[4], 2.0);
  EXPECT_EQ(hub.requests_to("storage").size(), 4u);
  EXPECT_NE(log.find("HTTP 429"), std::string::npos) << log;
  EXPECT_NE(log.find("Retry-After"), std::string::npos) << log;
  EXPECT_EQ(log.find(cfg.token), std::string::npos);
  EXPECT_EQ(log.find("X-Amz-Signature"), std::string::npos) << "signed storage URLs stay out of logs";
}

TEST(HubRetry, ARefusedStorageUrlIsResolvedAgainNotReportedAsGated) {
  TempDir tmp;
  FakeHubConfig cfg;
  cfg.faults = {{std::string("storage:") + kPythonShard, {"403"}}};
  FakeHub hub(cfg, tmp.path());
  HubClient client(options_for(hub, cfg));
  const auto files = list_dataset_files(client, cfg.repo, "main");
  download_file(client, cfg.repo, "main", find_file(files, kPythonShard), tmp.path() / "x.parquet");
  EXPECT_EQ(slurp(tmp.path() / "x.parquet"), slurp(hub_fixture_dir() / kPythonShard));
  size_t resolves = 0;
  for (const auto& r : hub.requests_to("main"))
    resolves += r["path"].get<std::string>().find("/resolve/") != std::string::npos;
  EXPECT_EQ(resolves, 2u);
  EXPECT_EQ(hub.requests_to("storage").size(), 2u);
}

TEST(HubRetry, GivesUpAfterTheBoundedNumberOfAttempts) {
  TempDir tmp;
  FakeHubConfig cfg;
  cfg.faults = {{"tree", {"500", "500", "500", "500"}}};
  FakeHub hub(cfg, tmp.path());
  HubOptions opts = options_for(hub, cfg);
  opts.retry.max_attempts = 3;
  HubClient client(opts);
  const std::string err = error_of([&] { list_dataset_files(client, cfg.repo, "main"); });
  EXPECT_NE(err.find("HTTP 500"), std::string::npos) << err;
  EXPECT_NE(err.find("after 3 attempts"), std::string::npos) << err;
  EXPECT_NE(err.find(cfg.repo), std::string::npos) << err;
  EXPECT_EQ(hub.requests().size(), 3u);
}

TEST(HubRetry, AStalledTransferTimesOutAndIsResumed) {
  TempDir tmp;
  FakeHubConfig cfg;
  cfg.faults = {{std::string("storage:") + kPythonShard, {"stall:4"}}};
  FakeHub hub(cfg, tmp.path());
  HubOptions opts = options_for(hub, cfg);
  opts.timeouts.low_speed_s = 1;
  opts.timeouts.low_speed_bytes = 1000;
  HubClient client(opts);
  const auto files = list_dataset_files(client, cfg.repo, "main");
  download_file(client, cfg.repo, "main", find_file(files, kPythonShard), tmp.path() / "x.parquet");
  EXPECT_EQ(slurp(tmp.path() / "x.parquet"), slurp(hub_fixture_dir() / kPythonShard));
  const auto storage = hub.requests_to("storage");
  ASSERT_EQ(storage.size(), 2u);
  EXPECT_EQ(storage[1]["headers"]["Range"], "bytes=1-");
}

TEST(HubDownload, WrongSha256OrLengthIsAnErrorAndLeavesNoFile) {
  for (const std::string fault : {"corrupt", "short", "long"}) {
    SCOPED_TRACE(fault);
    TempDir tmp;
    FakeHubConfig cfg;
    cfg.faults = {{std::string("storage:") + kPythonShard, {fault}}, {std::string("resolve:") + kJsonlFile, {fault}}};
    FakeHub hub(cfg, tmp.path());
    HubClient client(options_for(hub, cfg));
    const auto files = list_dataset_files(client, cfg.repo, "main");
    for (const char* path : {kPythonShard, kJsonlFile}) {
      const fs::path dest = tmp.path() / "out" / path;
      const std::string err = error_of([&] { download_file(client, cfg.repo, "main", find_file(files, path), dest); });
      EXPECT_NE(err.find(path), std::string::npos) << err;
      if (fault == "corrupt") {
        const bool lfs = std::string(path).ends_with(".parquet");
        EXPECT_NE(err.find(lfs ? "sha256" : "git blob id"), std::string::npos) << err;
      } else {
        EXPECT_NE(err.find("bytes but the tree API lists"), std::string::npos) << err;
      }
      EXPECT_FALSE(fs::exists(dest)) << path;
      fs::path partial = dest;
      partial += ".incomplete";
      EXPECT_FALSE(fs::exists(partial)) << path;
    }
  }
}

TEST(HubAuth, NoTokenOrAWrongOneGivesTheGatedMessageWithoutTheToken) {
  TempDir tmp;
  FakeHubConfig cfg;
  FakeHub hub(cfg, tmp.path());
  HubOptions opts = options_for(hub, cfg);
  opts.token.reset();
  HubClient anonymous(opts);
  std::string err = error_of([&] { list_dataset_files(anonymous, cfg.repo, "main"); });
  EXPECT_NE(err.find("HTTP 401"), std::string::npos) << err;
  EXPECT_NE(err.find("accept the dataset's terms on the Hub or set HF_TOKEN"), std::string::npos) << err;
  EXPECT_NE(err.find("no token found"), std::string::npos) << err;
  EXPECT_FALSE(hub.requests_to("main").at(0)["headers"].contains("Authorization"));

  const std::string wrong = "hf_wrongTOKENthatMustNotLeak";
  opts.token = HubToken{wrong, "HF_TOKEN"};
  HubClient refused(opts);
  err = error_of([&] { list_dataset_files(refused, cfg.repo, "main"); });
  EXPECT_NE(err.find("accept the dataset's terms on the Hub or set HF_TOKEN"), std::string::npos) << err;
  EXPECT_NE(err.find("the token from HF_TOKEN was refused"), std::string::npos) << err;
  EXPECT_EQ(err.find(wrong), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << "one line";
}

TEST(HubAuth, EndpointAndTokenFromTheEnvironment) {
  TempDir tmp;
  FakeHubConfig cfg;
  FakeHub hub(cfg, tmp.path());
  std::map<std::string, std::string> vars = {{"HF_ENDPOINT", hub.endpoint() + "/"}, {"HOME", tmp.path().string()}};
  spit(tmp.path() / ".cache" / "huggingface" / "token", cfg.token + "\n");
  const EnvLookup env = [&](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  HubOptions opts = hub_options_from_env("", env, tmp.path());
  EXPECT_EQ(opts.endpoint, hub.endpoint());
  ASSERT_TRUE(opts.token);
  EXPECT_EQ(opts.token->source, (tmp.path() / ".cache" / "huggingface" / "token").string());
  HubClient client(opts);
  EXPECT_EQ(list_dataset_files(client, cfg.repo, "main").size(), fixture_files().size());

  vars["HF_HUB_OFFLINE"] = "1";
  HubClient offline(hub_options_from_env("", env, tmp.path()));
  const std::string err = error_of([&] { list_dataset_files(offline, cfg.repo, "main"); });
  EXPECT_NE(err.find("HF_HUB_OFFLINE"), std::string::npos) << err;
}

TEST(HubToken, ResolutionOrderIsFlagEnvAccessEnvDotenvThenTokenFile) {
  TempDir tmp;
  const fs::path hf_home = tmp.path() / "hf_home";
  spit(hf_home / "token", "  tok_file\n");
  spit(tmp.path() / ".env", "# comment\nOTHER=1\nexport HF_TOKEN=\"tok_dotenv\"\n");
  std::map<std::string, std::string> vars = {{"HF_TOKEN", "tok_env"},
                                             {"HF_ACCESS_TOKEN", "tok_access"},
                                             {"HF_HOME", hf_home.string()},
                                             {"HOME", (tmp.path() / "home").string()}};
  const EnvLookup env = [&](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  auto value = [&](const std::string& flag) {
    auto t = resolve_token(flag, env, tmp.path());
    return t ? t->value + "@" + t->source : std::string("none");
  };
  EXPECT_EQ(value("tok_flag"), "tok_flag@--token");
  EXPECT_EQ(value(""), "tok_env@HF_TOKEN");
  vars["HF_TOKEN"] = "";  // set but empty counts as unset, as in huggingface_hub
  EXPECT_EQ(value(""), "tok_access@HF_ACCESS_TOKEN");
  vars.erase("HF_ACCESS_TOKEN");
  EXPECT_EQ(value(""), "tok_dotenv@" + (tmp.path() / ".env").string());
  spit(tmp.path() / ".env", "HF_ACCESS_TOKEN=tok_dotenv_access # trailing comment\n");
  EXPECT_EQ(value(""), "tok_dotenv_access@" + (tmp.path() / ".env").string());
  fs::remove(tmp.path() / ".env");
  EXPECT_EQ(value(""), "tok_file@" + (hf_home / "token").string());
  vars["HF_TOKEN_PATH"] = (tmp.path() / "elsewhere").string();
  spit(tmp.path() / "elsewhere", "tok_path");
  EXPECT_EQ(value(""), "tok_path@" + (tmp.path() / "elsewhere").string());
  vars.erase("HF_TOKEN_PATH");
  vars.erase("HF_HOME");
  vars["XDG_CACHE_HOME"] = (tmp.path() / "xdg").string();
  EXPECT_EQ(hf_token_file_path(env), tmp.path() / "xdg" / "huggingface" / "token");
  vars.erase("XDG_CACHE_HOME");
  EXPECT_EQ(hf_token_file_path(env), tmp.path() / "home" / ".cache" / "huggingface" / "token");
  EXPECT_EQ(value(""), "none");

  // A token that could inject a header is refused without echoing it.
  vars["HF_TOKEN"] = "tok_bad\r\nX-Evil: 1";
  const std::string err = error_of([&] { resolve_token("", env, tmp.path()); });
  EXPECT_NE(err.find("HF_TOKEN"), std::string::npos) << err;
  EXPECT_EQ(err.find("tok_bad"), std::string::npos) << err;
  EXPECT_EQ(redact("a hf_x b hf_x", "hf_x"), "a *** b ***");
}

TEST(HubUnits, LinkHeaderRetryAfterBackoffAndUrls) {
  EXPECT_EQ(parse_next_link("<https://h/api/x?cursor=a>; rel=\"next\""), "https://h/api/x?cursor=a");
  EXPECT_EQ(parse_next_link("<https://h/p>; rel=\"prev\", <https://h/n>; rel=\"next\""), "https://h/n");
  EXPECT_EQ(parse_next_link("<https://h/p>; rel=\"prev\""), std::nullopt);

  EXPECT_EQ(parse_retry_after("120", 1000), 120.0);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", 1445412480), 30.0);
  EXPECT_EQ(parse_retry_after("soon", 0), std::nullopt);

  // Equal jitter: within [step/2, step], the step doubling up to the cap; Retry-After is clamped.
  RetryPolicy p;
  p.base_delay_s = 1.0;
  p.max_delay_s = 8.0;
  std::mt19937 gen(7);
  p.uniform01 = [&] { return std::uniform_real_distribution<double>(0, 1)(gen); };
  for (int n = 1; n <= 8; ++n) {
    const double step = std::min(8.0, std::ldexp(1.0, n - 1));
    for (int k = 0; k < 50; ++k) {
      const double d = retry_delay(p, n, std::nullopt);
      EXPECT_GE(d, step / 2);
      EXPECT_LE(d, step);
    }
  }
  EXPECT_EQ(retry_delay(p, 1, 5000.0), p.max_retry_after_s);
  EXPECT_TRUE(is_retryable_status(429));
  EXPECT_TRUE(is_retryable_status(502));
  EXPECT_FALSE(is_retryable_status(404));
  EXPECT_FALSE(is_retryable_status(403));

  EXPECT_EQ(url_origin("HTTPS://HuggingFace.co/api"), "https://huggingface.co:443");
  EXPECT_NE(url_origin("http://127.0.0.1:1/x"), url_origin("http://127.0.0.1:2/x"));
  EXPECT_EQ(resolve_url("https://h/datasets/a/b/resolve/main/x", "/api/y?c=1"), "https://h/api/y?c=1");
  EXPECT_EQ(printable_url("https://cdn.example/o/abc?X-Amz-Signature=s3cr3t"), "https://cdn.example/o/abc");
  EXPECT_EQ(url_escape("refs/convert/parquet", false), "refs%2Fconvert%2Fparquet");
  EXPECT_EQ(url_escape("data/c++/a b.parquet", true), "data/c%2B%2B/a%20b.parquet");

  for (const char* bad : {"../x", "/etc/passwd", "a//b", "a/./b", "a/..", "a\\b", ""})
    EXPECT_THROW(check_repo_path(bad, "test"), Error) << bad;
  EXPECT_NO_THROW(check_repo_path("data/python/train-00000-of-00002.parquet", "test"));
  for (const char* bad : {"the-stack", "a/b/c", "/b", "a/", "a b/c", "a/../b"})
    EXPECT_THROW(check_dataset_id(bad), Error) << bad;
  EXPECT_NO_THROW(check_dataset_id("bigcode/the-stack"));
}

}  // namespace
}  // namespace onebit::hub
