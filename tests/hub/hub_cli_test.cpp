// `onebit hub ls | download` against the fake Hub: the binary finds the endpoint and token in the
// environment, downloads whole folders, and a gated dataset without a token ends with exactly one
// "onebit: error:" line that says what to do and shows no token.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>

#include "fake_hub.h"

namespace onebit::hub {
namespace {

namespace fs = std::filesystem;
using testing::FakeHub;
using testing::FakeHubConfig;
using testing::hub_fixture_dir;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct CliRun {
  int status = -1;
  std::string out, err;
};

// Runs the onebit binary in `cwd` with exactly the environment `env` (no inherited HF_* variables).
CliRun run_onebit(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                  const fs::path& cwd) {
  const fs::path out = cwd / "stdout.txt", err = cwd / "stderr.txt";
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::clearenv();
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    ::dup2(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
    ::dup2(::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 2);
    std::vector<std::string> all = {ONEBIT_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(ONEBIT_BINARY, argv.data());
    ::_exit(127);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  CliRun r{WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), slurp(out), slurp(err)};
  fs::remove(out);
  fs::remove(err);
  return r;
}

class HubCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("onebit-hub-cli-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
    hub_ = std::make_unique<FakeHub>(cfg_, dir_);
    env_ = {{"HOME", dir_.string()}, {"HF_ENDPOINT", hub_->endpoint()}, {"PATH", "/usr/bin:/bin"}};
    // Where libraries come from a private prefix (scripts/gpu-check.sh's carried packages), the
    // binary still needs the loader path; it carries no HF_* setting, so the test stays hermetic.
    if (const char* ld = std::getenv("LD_LIBRARY_PATH")) env_["LD_LIBRARY_PATH"] = ld;
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
  CliRun ls = run_onebit({"hub", "ls", "--dataset-id", cfg_.repo}, env_, dir_);
  ASSERT_EQ(ls.status, 0) << ls.err;
  size_t lines = 0;
  for (char c : ls.out) lines += c == '\n';
  EXPECT_EQ(lines, 13u) << ls.out;
  EXPECT_NE(ls.out.find("79028\tsha256:"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("\tdata/c/train-00000-of-00002.parquet\n"), std::string::npos) << ls.out;

  CliRun dl = run_onebit(
      {"hub", "download", "--dataset-id", cfg_.repo, "--path", "data/c", "--output", "out", "--parallel", "2"}, env_,
      dir_);
  ASSERT_EQ(dl.status, 0) << dl.err;
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out")) {
    if (!e.is_regular_file()) continue;
    ++files;
    const std::string rel = fs::relative(e.path(), dir_ / "out").generic_string();
    EXPECT_EQ(rel.rfind("data/c/", 0), 0u) << rel;
    EXPECT_EQ(slurp(e.path()), slurp(hub_fixture_dir() / rel)) << rel;
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
  CliRun r = run_onebit({"hub", "ls", "--dataset-id", cfg_.repo, "--path", "data/nope"}, env_, dir_);
  EXPECT_EQ(r.status, 1);
  // The log line naming the commit, then the error as the last and only error line.
  const std::string want =
      "onebit: error: --path \"data/nope\": no such file or folder in dataset " + cfg_.repo + " at revision \"main\"\n";
  ASSERT_GE(r.err.size(), want.size()) << r.err;
  EXPECT_EQ(r.err.substr(r.err.size() - want.size()), want) << r.err;
  EXPECT_EQ(r.err.find("onebit: error:"), r.err.size() - want.size()) << r.err;
}

TEST_F(HubCli, AGatedDatasetWithoutATokenIsOneClearErrorLine) {
  CliRun r = run_onebit({"hub", "download", "--dataset-id", cfg_.repo, "--output", "out"}, env_, dir_);
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
