#pragma once
// A fresh directory per test, removed afterwards.
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace onebit::data::testing {

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "onebit";
    path_ = std::filesystem::temp_directory_path() /
            ("onebit-data-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()) + "-" + name);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Expects `fn` to throw onebit::Error whose message contains every one of `parts`.
template <typename Fn, typename... Parts>
void expect_error(Fn&& fn, const Parts&... parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an onebit::Error";
  } catch (const onebit::Error& e) {
    std::string msg = e.what();
    for (const std::string& p : {std::string(parts)...})
      EXPECT_NE(msg.find(p), std::string::npos) << "message \"" << msg << "\" lacks \"" << p << "\"";
  }
}

}  // namespace onebit::data::testing
