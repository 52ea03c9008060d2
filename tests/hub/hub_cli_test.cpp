// `onebit hub ls | download` against the fake Hub: the binary finds the endpoint and token in the
// environment, downloads whole folders, and a gated dataset without a token ends with exactly one
// "onebit: error:" line that says what to do and shows no token.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <random>

#include "../cli/cli_util.h"
#include "fake_hub.h"

namespace onebit::hub {
namespace {

namespace fs = std::filesystem;
using testing::FakeHub;
using testing::FakeHubConfig;
using testing::hub_fixture_dir;
using test::onebit_argv;
using test::ProcessIo;
using test::run_process;
using test::RunResult;

// Runs the onebit binary in `cwd` with exactly the environment `env` (no inherited HF_* variables).
RunResult run_onebit(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                     const fs::path& cwd) {
  return run_process(onebit_argv(args), ProcessIo::hermetic(cwd / "stdout.txt", cwd / "stderr.txt", cwd, env));
}

class HubCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("onebit-hub-cli-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
    hub_ = std::make_unique<FakeHub>(cfg_, dir_);
    env_ = hub_->cli_env(dir_);
  }
  void TearDown() override {
    hub_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
  FakeHubConfig cfg_;
  std::unique_ptr<FakeHub> hub_;
  std::map<std::string, std::string> env_;
};

TEST_F(HubCli, LsListsEveryFileAndDownloadFetchesAFolder) {
  env_["HF_TOKEN"] = cfg_.token;
  RunResult ls = run_onebit({"hub", "ls", "--dataset-id", cfg_.repo}, env_, dir_);
  ASSERT_EQ(ls.status, 0) << ls.err;
  size_t lines = 0;
  for (char c : ls.out) lines += c == '\n';
  EXPECT_EQ(lines, 13u) << ls.out;
  EXPECT_NE(ls.out.find("79028\tsha256:"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("\tdata/c/train-00000-of-00002.parquet\n"), std::string::npos) << ls.out;

  RunResult dl = run_onebit(
      {"hub", "download", "--dataset-id", cfg_.repo, "--path", "data/c", "--output", "out", "--parallel", "2"}, env_,
      dir_);
  ASSERT_EQ(dl.status, 0) << dl.err;
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out")) {
    if (!e.is_regular_file()) continue;
    ++files;
    const std::string rel = fs::relative(e.path(), dir_ / "out").generic_string();
    EXPECT_EQ(rel.rfind("data/c/", 0), 0u) << rel;
    EXPECT_EQ(read_file(e.path()), read_file(hub_fixture_dir() / rel)) << rel;
  }
  EXPECT_EQ(files, 4u);
  EXPECT_EQ(dl.err.find(cfg_.token), std::string::npos);
  EXPECT_EQ(dl.out.find(cfg_.token), std::string::npos);
  for (const auto& r : hub_->requests_to("storage")) EXPECT_FALSE(r["headers"].contains("Authorization"));
  // Every file was resolved at the commit "main" pointed at when the command started.
  size_t resolves = 0;
  for (const auto& r : hub_->requests_to("main")) {
    const std::string path = r["path"];
    if (path.find("/resolve/") == std::string::npos) continue;
    ++resolves;
    EXPECT_NE(path.find("/resolve/0123456789abcdef0123456789abcdef01234567/"), std::string::npos) << path;
  }
  EXPECT_EQ(resolves, 4u);
  EXPECT_NE(dl.err.find("is commit 0123456789abcdef0123456789abcdef01234567"), std::string::npos) << dl.err;
}

TEST_F(HubCli, TokenFromDotenvAndAMissingPathIsAnError) {
  std::ofstream(dir_ / ".env") << "HF_TOKEN=" << cfg_.token << "\n";
  RunResult r = run_onebit({"hub", "ls", "--dataset-id", cfg_.repo, "--path", "data/nope"}, env_, dir_);
  EXPECT_EQ(r.status, 1);
  // The log line naming the commit, then the error as the last and only error line.
  const std::string want =
      "onebit: error: --path \"data/nope\": no such file or folder in dataset " + cfg_.repo + " at revision \"main\"\n";
  ASSERT_GE(r.err.size(), want.size()) << r.err;
  EXPECT_EQ(r.err.substr(r.err.size() - want.size()), want) << r.err;
  EXPECT_EQ(r.err.find("onebit: error:"), r.err.size() - want.size()) << r.err;
}

TEST_F(HubCli, AGatedDatasetWithoutATokenIsOneClearErrorLine) {
  RunResult r = run_onebit({"hub", "download", "--dataset-id", cfg_.repo, "--output", "out"}, env_, dir_);
  EXPECT_EQ(r.status, 1);
  ASSERT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("onebit: error: dataset " + cfg_.repo, 0), 0u) << r.err;
  EXPECT_NE(r.err.find("accept the dataset's terms on the Hub or set HF_TOKEN"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out"));

  // A refused token is named by its source, never shown.
  const std::string wrong = "hf_refusedTOKENvalue42";
  r = run_onebit({"hub", "ls", "--dataset-id", cfg_.repo, "--token", wrong}, env_, dir_);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("the token from --token was refused"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(wrong), std::string::npos) << r.err;

  r = run_onebit({"hub", "ls", "--dataset-id", "not-a-repo-id"}, env_, dir_);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("onebit: error: --dataset-id \"not-a-repo-id\""), std::string::npos) << r.err;
}

}  // namespace
}  // namespace onebit::hub
