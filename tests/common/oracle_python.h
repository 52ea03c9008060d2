#pragma once
// The Python interpreter that has the test oracles (numpy, safetensors, Hugging Face tokenizers), made
// by scripts/install-test-oracles.sh. Found through ONEBIT_TEST_PYTHON (scripts/test.sh exports it),
// else the checkout's .venv-oracles; tests that need it skip, saying how to get it, when there is none.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace onebit::test {

// Empty when there is no oracle Python; a set but unusable ONEBIT_TEST_PYTHON fails the test instead,
// so a broken CI setup cannot pass as "skipped".
inline std::string oracle_python() {
  if (const char* env = std::getenv("ONEBIT_TEST_PYTHON"); env && *env) {
    EXPECT_EQ(::access(env, X_OK), 0) << "ONEBIT_TEST_PYTHON=" << env << " is not an executable";
    return env;
  }
  const std::string venv = std::string(ONEBIT_SOURCE_DIR) + "/.venv-oracles/bin/python";
  return ::access(venv.c_str(), X_OK) == 0 ? venv : std::string();
}

inline const char* kNoOracleMessage =
    "no oracle Python: run `bash scripts/install-test-oracles.sh` (it creates .venv-oracles with numpy, "
    "safetensors, tokenizers and gguf) or set ONEBIT_TEST_PYTHON to a python that has them";

}  // namespace onebit::test

// Declares `std::string var` = the oracle Python, or skips the test with a message saying how to get one.
#define ONEBIT_ORACLE_PYTHON_OR_SKIP(var)                                                   \
  const std::string var = ::onebit::test::oracle_python();                                \
  if (var.empty()) GTEST_SKIP() << ::onebit::test::kNoOracleMessage
