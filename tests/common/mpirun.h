#pragma once
// mpirun for the tests that launch ranks: where it is on PATH, and the pid of one rank among its
// children (mpirun starts the local ranks itself), so a test can kill exactly that rank.
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace onebit::test {

// The mpirun on PATH, or "" (the tests skip then).
inline std::string find_mpirun() {
  namespace fs = std::filesystem;
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (!dir.empty() && ::access((fs::path(dir) / "mpirun").c_str(), X_OK) == 0) return (fs::path(dir) / "mpirun").string();
  return "";
}

// The pid of rank `rank` among mpirun_pid's children (OMPI_COMM_WORLD_RANK in its environment), or -1.
inline pid_t find_rank(pid_t mpirun_pid, int rank) {
  namespace fs = std::filesystem;
  const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != mpirun_pid) continue;
    std::ifstream env(e.path() / "environ", std::ios::binary);
    std::string var;
    while (std::getline(env, var, '\0'))
      if (var == want) return std::stoi(name);
  }
  return -1;
}

}  // namespace onebit::test
