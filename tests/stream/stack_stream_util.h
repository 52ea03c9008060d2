#pragma once
// What the `onebit stack-stream` end-to-end tests share: the fixture's rows, a thread sampling the
// bytes under a directory, the command started with exactly the environment a test gives (alone or
// under mpirun), and the row log (ONEBIT_STREAM_ROW_LOG) read back with its replay check.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "../hub/fake_hub.h"
#include "disk_watcher.h"

namespace onebit::stream::testing {

namespace fs = std::filesystem;
using hub::testing::FakeHub;
using hub::testing::FakeHubConfig;
using hub::testing::hub_fixture_dir;
using json = nlohmann::json;

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

// Rows of every fixture shard: path -> the bytes of each row's content (null → empty).
inline std::map<std::string, std::vector<std::string>> fixture_rows() {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& e : fs::recursive_directory_iterator(hub_fixture_dir())) {
    const std::string name = e.path().filename().string();
    const std::string suffix = ".expected.jsonl";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    std::string rel = fs::relative(e.path(), hub_fixture_dir()).generic_string();
    rel = rel.substr(0, rel.size() - suffix.size()) + ".parquet";
    auto& rows = out[rel];
    for (const auto& l : lines_of(slurp(e.path()))) {
      const json j = json::parse(l);
      rows.push_back(j["content"].is_null() ? std::string() : j["content"].get<std::string>());
    }
  }
  return out;
}

// A row log "<seq> <epoch> <path> <row>" per line, as seq -> "<epoch> <path> <row>". A resumed run
// replays from its checkpoint, so a seq may appear several times, but always as the same row, and
// the seqs have no gaps (checked here).
inline std::map<uint64_t, std::string> read_row_log(const fs::path& log) {
  std::map<uint64_t, std::string> by_seq;
  for (const auto& l : lines_of(slurp(log))) {
    std::istringstream ls(l);
    uint64_t seq;
    std::string rest;
    ls >> seq;
    std::getline(ls, rest);
    EXPECT_FALSE(rest.empty()) << l;  // one write(2) per line: a kill cannot cut one
    const auto [it, inserted] = by_seq.emplace(seq, rest);
    EXPECT_EQ(it->second, rest) << log << ": seq " << seq << " was another row after a resume";
  }
  if (!by_seq.empty()) {
    EXPECT_EQ(by_seq.rbegin()->first + 1, by_seq.size()) << log << " has gaps";
  }
  return by_seq;
}

struct LoggedRow {
  uint64_t epoch = 0;
  std::string path;
  uint64_t row = 0;
};
inline LoggedRow parse_logged_row(const std::string& rest) {
  LoggedRow r;
  std::istringstream ls(rest);
  ls >> r.epoch >> r.path >> r.row;
  return r;
}

// A temp dir, the fake Hub and the command run in that dir with exactly env_ (no inherited HF_*).
class StackStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("onebit-stack-stream-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    hub_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // The environment of a run against hub_ (started first).
  void use_hub_env() {
    env_ = {{"HOME", dir_.string()},
            {"PATH", "/usr/bin:/bin"},
            {"HF_ENDPOINT", hub_->endpoint()},
            {"HF_TOKEN", cfg_.token}};
    if (const char* ld = std::getenv("LD_LIBRARY_PATH")) env_["LD_LIBRARY_PATH"] = ld;
    if (const char* device = std::getenv("ONEBIT_DEVICE")) env_["ONEBIT_DEVICE"] = device;  // ctest's cpu
  }

  // Starts argv (argv[0] the executable) in dir_ with exactly env_; output to <tag>.out/.err.
  pid_t spawn_argv(const std::vector<std::string>& argv, const std::string& tag) {
    const fs::path out = dir_ / (tag + ".out"), err = dir_ / (tag + ".err");
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (::chdir(dir_.c_str()) != 0) ::_exit(126);
      ::clearenv();
      for (const auto& [k, v] : env_) ::setenv(k.c_str(), v.c_str(), 1);
      ::dup2(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
      ::dup2(::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 2);
      std::vector<std::string> all = argv;
      std::vector<char*> a;
      for (auto& s : all) a.push_back(s.data());
      a.push_back(nullptr);
      ::execv(a[0], a.data());
      ::_exit(127);
    }
    return pid;
  }
  // The token the fake Hub requires appears in no output of the runs, no file they wrote under
  // <dir_>/out (but the weights) and no request to the storage host, which never gets an
  // Authorization header either.
  void expect_token_confined(const std::string& output) {
    ASSERT_FALSE(cfg_.token.empty());
    EXPECT_EQ(output.find(cfg_.token), std::string::npos);
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "out"))
      if (e.is_regular_file() && e.path().extension() != ".safetensors") {
        EXPECT_EQ(slurp(e.path()).find(cfg_.token), std::string::npos) << e.path();
      }
    const auto storage = hub_->requests_to("storage");
    EXPECT_FALSE(storage.empty());
    for (const auto& r : storage) {
      EXPECT_FALSE(r["headers"].contains("Authorization")) << r.dump();
      EXPECT_EQ(r.dump().find(cfg_.token), std::string::npos) << r.dump();
    }
  }
  // The onebit binary with `args`.
  pid_t spawn(const std::vector<std::string>& args, const std::string& tag) {
    std::vector<std::string> all = {ONEBIT_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    return spawn_argv(all, tag);
  }
  static int wait_status(pid_t pid) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  // Train lines in <dir>/metrics.jsonl so far.
  size_t metrics_lines(const fs::path& out) const {
    std::ifstream in(out / "metrics.jsonl");
    size_t n = 0;
    std::string l;
    while (std::getline(in, l)) n += l.find("\"loss\"") != std::string::npos;
    return n;
  }
  size_t metrics_lines() const { return metrics_lines(dir_ / "out"); }
  // trainer_state.json of the latest checkpoint under <out>/checkpoints.
  json latest_state(const fs::path& out) const {
    const std::string latest = lines_of(slurp(out / "checkpoints" / "latest")).at(0);
    return json::parse(slurp(out / "checkpoints" / latest / "trainer_state.json"));
  }

  fs::path dir_;
  FakeHubConfig cfg_;
  std::unique_ptr<FakeHub> hub_;
  std::map<std::string, std::string> env_;
};

}  // namespace onebit::stream::testing
