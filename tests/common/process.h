#pragma once
// Starting a program from a test: argv without a shell, stdout and stderr to files, stdin from a file,
// the working directory and the environment of the test's choosing; its exit status; its output.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "onebit/core/fs.h"

namespace onebit::test {

struct ProcessIo {
  ProcessIo(std::filesystem::path out_file, std::filesystem::path err_file)
      : out(std::move(out_file)), err(std::move(err_file)) {}
  // Runs in `dir` and sees exactly `environment`, nothing of the test's (no HF_* of the caller).
  static ProcessIo hermetic(std::filesystem::path out_file, std::filesystem::path err_file, std::filesystem::path dir,
                            std::map<std::string, std::string> environment) {
    ProcessIo io(std::move(out_file), std::move(err_file));
    io.cwd = std::move(dir);
    io.env = std::move(environment);
    io.inherit_env = false;
    return io;
  }

  std::filesystem::path out, err;          // stdout and stderr go to these files (truncated)
  std::filesystem::path in;                // stdin comes from this file; empty: the test's own
  std::filesystem::path cwd;               // empty: the test's working directory
  std::map<std::string, std::string> env;  // set in the program's environment
  bool inherit_env = true;                 // false: the program sees `env` alone
};

// Starts argv[0] (a path, not looked up in PATH) with argv; returns its pid (exit status 127 when it
// could not be started, 126 when cwd could not be entered).
inline pid_t spawn_process(const std::vector<std::string>& argv, const ProcessIo& io) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!io.cwd.empty() && ::chdir(io.cwd.c_str()) != 0) ::_exit(126);
    if (!io.inherit_env) ::clearenv();
    for (const auto& [k, v] : io.env) ::setenv(k.c_str(), v.c_str(), 1);
    if (!io.in.empty()) ::dup2(::open(io.in.c_str(), O_RDONLY), 0);
    ::dup2(::open(io.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
    ::dup2(::open(io.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 2);
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for the process; its exit code, or 128 + the signal that ended it.
inline int wait_status(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct RunResult {
  int status = -1;  // exit code, or 128 + signal
  std::string out, err;
};

// Runs the program to its end; its stdout and stderr files are read and removed.
inline RunResult run_process(const std::vector<std::string>& argv, const ProcessIo& io) {
  RunResult r;
  r.status = wait_status(spawn_process(argv, io));
  r.out = read_file(io.out);
  r.err = read_file(io.err);
  std::filesystem::remove(io.out);
  std::filesystem::remove(io.err);
  return r;
}

}  // namespace onebit::test
