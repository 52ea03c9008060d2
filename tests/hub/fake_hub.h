#pragma once
// Runs tests/hub/fake_hub.py (a fake Hugging Face Hub on 127.0.0.1: the Hub on one port, LFS
// storage on another) for one test, and reads back the requests it recorded.
#include <sys/types.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace onebit::hub::testing {

struct FakeHubConfig {
  std::string repo = "bigcode/fake-stack";
  std::string token = "hf_fakeTOKEN0123456789secret";
  int page_size = 2;
  nlohmann::json faults = nlohmann::json::object();  // "<stage>:<path>" -> ["fault", ...]
};

class FakeHub {
 public:
  FakeHub(const FakeHubConfig& config, const std::filesystem::path& work_dir);
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(main_port_); }
  int storage_port() const { return storage_port_; }
  // Every request so far: {"server": "main"|"storage", "method", "path", "headers": {...}}.
  std::vector<nlohmann::json> requests() const;
  std::vector<nlohmann::json> requests_to(const std::string& server) const;
  std::string request_log_text() const;
  // The whole environment for running the onebit binary against this hub (ProcessIo::inherit_env =
  // false): HOME, PATH /usr/bin:/bin and HF_ENDPOINT, plus the caller's LD_LIBRARY_PATH where set
  // (libraries from a private prefix, scripts/gpu-check.sh's carried packages). Nothing else, so no
  // HF_* setting of the caller's reaches it and the test stays hermetic.
  std::map<std::string, std::string> cli_env(const std::filesystem::path& home) const;

 private:
  pid_t pid_ = -1;
  int main_port_ = 0, storage_port_ = 0;
  std::filesystem::path log_;
};

// tests/fixtures/hub-fixture: the files the fake serves.
std::filesystem::path hub_fixture_dir();

}  // namespace onebit::hub::testing
