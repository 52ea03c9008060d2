#pragma once
// One seed per test process for tests that want fresh random inputs on every run. ONEBIT_TEST_SEED
// replays a run (`ONEBIT_TEST_SEED=123 ctest -R name`); otherwise the seed comes from random_device.
// A failing test that asked for the seed prints it, so every failure can be reproduced.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace onebit::test {

struct SeedState {
  uint64_t seed = 0;
  bool used = false;  // printed on failure only when the test drew from it
};

inline SeedState& seed_state() {
  static SeedState s = [] {
    SeedState st;
    const char* env = std::getenv("ONEBIT_TEST_SEED");
    if (env && *env) {
      char* end = nullptr;
      st.seed = std::strtoull(env, &end, 0);
      if (*end != '\0') {
        std::fprintf(stderr, "onebit: error: ONEBIT_TEST_SEED=%s is not an unsigned integer\n", env);
        std::exit(2);
      }
    } else {
      std::random_device rd;
      st.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    }
    return st;
  }();
  return s;
}

// The run's seed; `salt` gives independent streams for different inputs of one test.
inline uint64_t test_seed(uint64_t salt = 0) {
  SeedState& s = seed_state();
  s.used = true;
  return s.seed + salt * 0x9E3779B97F4A7C15ull;
}

class SeedPrinter : public ::testing::EmptyTestEventListener {
  void OnTestEnd(const ::testing::TestInfo& info) override {
    const SeedState& s = seed_state();
    if (!info.result()->Failed() || !s.used) return;
    std::printf("[  SEED    ] %s.%s drew random inputs from seed %llu; replay with ONEBIT_TEST_SEED=%llu\n",
                info.test_suite_name(), info.name(), static_cast<unsigned long long>(s.seed),
                static_cast<unsigned long long>(s.seed));
    std::fflush(stdout);
  }
};

// Registered once per binary (an inline variable is initialized once across translation units).
inline const bool kSeedPrinterRegistered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new SeedPrinter);
  return true;
}();

}  // namespace onebit::test
