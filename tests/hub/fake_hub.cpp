#include "fake_hub.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace onebit::hub::testing {

std::filesystem::path hub_fixture_dir() { return std::filesystem::path(ONEBIT_TEST_FIXTURES) / "hub-fixture"; }

FakeHub::FakeHub(const FakeHubConfig& config, const std::filesystem::path& work_dir) {
  log_ = work_dir / "fake_hub_requests.jsonl";
  const std::string script = std::string(ONEBIT_SOURCE_DIR) + "/tests/hub/fake_hub.py";
  std::vector<std::string> args = {
      "python3", script,       "--root",      hub_fixture_dir().string(),       "--repo",   config.repo,
      "--token", config.token, "--page-size", std::to_string(config.page_size), "--faults", config.faults.dump(),
      "--log",   log_.string()};
  int out[2];
  if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp("python3", argv.data());
    std::perror("fake hub: execvp python3");
    ::_exit(127);
  }
  ::close(out[1]);
  // The first stdout line is "PORTS <main> <storage>" once both servers listen.
  std::string line;
  pollfd p{out[0], POLLIN, 0};
  while (line.find('\n') == std::string::npos) {
    if (::poll(&p, 1, 20000) <= 0) break;
    char buf[256];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  if (std::sscanf(line.c_str(), "PORTS %d %d", &main_port_, &storage_port_) != 2) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    throw std::runtime_error("fake hub did not start (is python3 on PATH?): \"" + line + "\"");
  }
}

FakeHub::~FakeHub() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string FakeHub::request_log_text() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, std::string> FakeHub::cli_env(const std::filesystem::path& home) const {
  std::map<std::string, std::string> env = {
      {"HOME", home.string()}, {"PATH", "/usr/bin:/bin"}, {"HF_ENDPOINT", endpoint()}};
  if (const char* ld = std::getenv("LD_LIBRARY_PATH")) env["LD_LIBRARY_PATH"] = ld;
  return env;
}

std::vector<nlohmann::json> FakeHub::requests() const {
  std::vector<nlohmann::json> out;
  std::istringstream in(request_log_text());
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::vector<nlohmann::json> FakeHub::requests_to(const std::string& server) const {
  std::vector<nlohmann::json> out;
  for (auto& r : requests())
    if (r["server"] == server) out.push_back(r);
  return out;
}

}  // namespace onebit::hub::testing
