#pragma once
// Running the onebit binary from tests: argv without a shell, captured output, a private token
// cache (XDG_CACHE_HOME), and snapshots of a directory to prove that a failed command wrote nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"
#include "process.h"

namespace onebit::test {

inline fs::path cli_temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / cat("onebit-cli-", name, "-", ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The onebit binary (ONEBIT_BINARY) and args, as an argv for spawn_process.
inline std::vector<std::string> onebit_argv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ONEBIT_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// Starts ONEBIT_BINARY with args; stdout/stderr go to the given files, stdin comes from `in` if given.
inline pid_t spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err,
                   const fs::path& cache, const fs::path& in = {}) {
  ProcessIo io(out, err);
  io.in = in;
  io.env["XDG_CACHE_HOME"] = cache.string();
  return spawn_process(onebit_argv(args), io);
}

// Runs onebit to its end with scratch/cache as its token cache (stdin from `in` if given).
inline RunResult run(const std::vector<std::string>& args, const fs::path& scratch, const fs::path& in = {}) {
  ProcessIo io(scratch / "stdout.txt", scratch / "stderr.txt");
  io.in = in;
  io.env["XDG_CACHE_HOME"] = (scratch / "cache").string();
  return run_process(onebit_argv(args), io);
}

// path (relative) → bytes of every file under dir.
inline std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> m;
  if (!fs::exists(dir)) return m;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) m[fs::relative(e.path(), dir).string()] = read_file(e.path());
  return m;
}

// Polls until `path` exists (or the process has exited, or timeout); true if seen. If the process
// exits first it is reaped and *exited set to its status.
inline bool wait_for_path(const fs::path& path, pid_t pid, double timeout_s, int* exited) {
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < timeout_s) {
    if (fs::exists(path)) return true;
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      *exited = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return fs::exists(path);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return false;
}

// A small slice of the repo's tinyshakespeare as a training text.
inline fs::path write_small_text(const fs::path& dir, size_t bytes) {
  std::string all = read_file(fs::path(ONEBIT_SOURCE_DIR) / "data" / "tinyshakespeare.txt");
  fs::path p = dir / "shakespeare-small.txt";
  write_file_atomic(p, all.substr(0, bytes));
  return p;
}

// The micro model config the CLI tests train (tests/fixtures/train/micro.json).
inline std::string micro_config_path() { return (fs::path(ONEBIT_TEST_FIXTURES) / "train" / "micro.json").string(); }

// The micro bitnet-shaped model config (tests/fixtures/train/micro-bitnet.json).
inline std::string micro_bitnet_config_path() {
  return (fs::path(ONEBIT_TEST_FIXTURES) / "train" / "micro-bitnet.json").string();
}

// The micro bitnet-shaped model trained for 12 steps on `data` into `out`, ending in the Hard phase:
// the model the GGUF export and import tests convert.
inline std::vector<std::string> micro_bitnet_hard_phase_train_args(const fs::path& data, const fs::path& out) {
  return {"train", "--data", data.string(), "--model-config", micro_bitnet_config_path(), "--output-dir",
          out.string(), "--max-steps", "12", "--batch-size", "4", "--seq-len", "32", "--threads", "2",
          "--quant-warmup-steps", "2", "--quant-anneal-steps", "4", "--final-eval-batches", "1"};
}

// A suite of tests over one small model trained once for the whole suite (SetUpTestSuite), in a fresh
// scratch folder removed at its end. The suite derives from TrainedRunSuite<itself> (so each suite has
// its own folder) and gives
//   static constexpr const char* kName;  the scratch folder's name (cli_temp_dir)
//   static constexpr size_t kTextBytes;  how much of tinyshakespeare is the training text
//   static std::vector<std::string> train_args(const fs::path& run_dir);  the train command (*data is set)
// Its tests find the scratch folder, the training text and the trained run dir in *dir, *data and
// *run_dir. (ctest runs each TEST in its own process, which trains anew.)
template <typename Suite>
class TrainedRunSuite : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    dir = new fs::path(cli_temp_dir(Suite::kName));
    data = new fs::path(write_small_text(*dir, Suite::kTextBytes));
    run_dir = new fs::path(*dir / "run");
    RunResult r = run(Suite::train_args(*run_dir), *dir);
    ASSERT_EQ(r.status, 0) << r.err;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir);
    delete dir;
    delete data;
    delete run_dir;
  }

 protected:
  static inline fs::path* dir = nullptr;
  static inline fs::path* data = nullptr;
  static inline fs::path* run_dir = nullptr;
};

// A fresh copy of a run dir at `to` (whatever was there is removed), for tests that damage a copy.
inline fs::path copy_dir_fresh(const fs::path& from, const fs::path& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
  return to;
}

// Which lines may stand on stderr beside the one error line of a failed command.
enum class ErrorLines {
  Only,       // stderr is exactly the one "onebit: error: ..." line
  AfterLogs,  // [onebit info]/[onebit warn] lines may come before it; the error line is the last
};

// A failed command: non-zero exit, exactly one "onebit: error: ..." line on stderr, holding `needle`.
inline void expect_one_error_line(const RunResult& r, const std::string& needle,
                                  ErrorLines allowed = ErrorLines::Only) {
  EXPECT_NE(r.status, 0) << needle;
  std::istringstream lines(r.err);
  std::vector<std::string> errors;
  std::string line, last;
  int count = 0;
  while (std::getline(lines, line)) {
    ++count;
    if (line.rfind("onebit: error: ", 0) == 0) {
      errors.push_back(line);
    } else if (allowed == ErrorLines::AfterLogs) {
      EXPECT_TRUE(line.rfind("[onebit info] ", 0) == 0 || line.rfind("[onebit warn] ", 0) == 0) << line;
    }
    last = line;
  }
  if (allowed == ErrorLines::Only) {
    EXPECT_EQ(count, 1) << "more than one line: " << r.err;
  }
  ASSERT_EQ(errors.size(), 1u) << r.err;
  EXPECT_EQ(errors[0], last) << r.err;
  EXPECT_NE(last.find(needle), std::string::npos) << "expected \"" << needle << "\" in: " << last;
}

// Runs a command that must fail as expect_one_error_line(..., AfterLogs) says and leave every file
// under `protect` as it was.
inline void expect_error_leaving(const std::vector<std::string>& args, const fs::path& scratch,
                                 const std::string& needle, const fs::path& protect) {
  auto before = snapshot(protect);
  ASSERT_FALSE(before.empty());
  expect_one_error_line(run(args, scratch), needle, ErrorLines::AfterLogs);
  EXPECT_TRUE(snapshot(protect) == before) << "files under " << protect << " changed";
}

}  // namespace onebit::test
