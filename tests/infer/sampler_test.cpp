// The sampler: greedy, top-k, top-p, frequencies that follow softmax(logits / T), determinism for a
// seed, and options it refuses (NaN and infinite temperatures included).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/infer/sampler.h"

using namespace onebit;
using namespace onebit::infer;

TEST(Sampling, GreedyTopKTopPAndDeterminism) {
  std::vector<float> logits = {0.0f, 3.0f, 1.0f, 3.0f, -2.0f};
  Rng r(1);
  EXPECT_EQ(sample_token(logits, {0.0f, 0, 1.0f}, r), 1);  // ties break toward the lower id
  // top_k = 1 is greedy whatever the temperature.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, {2.0f, 1, 1.0f}, r), 1);
  // top_k = 2 never leaves {1, 3}, and both appear.
  int seen1 = 0, seen3 = 0;
  for (int i = 0; i < 400; ++i) {
    int t = sample_token(logits, {1.0f, 2, 1.0f}, r);
    ASSERT_TRUE(t == 1 || t == 3);
    (t == 1 ? seen1 : seen3)++;
  }
  EXPECT_GT(seen1, 100);
  EXPECT_GT(seen3, 100);
  // top_p small enough keeps only the best token.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, {1.0f, 0, 0.1f}, r), 1);
  // Frequencies follow softmax(logits / T) without truncation.
  std::vector<float> two = {0.0f, std::log(3.0f)};
  int ones = 0;
  for (int i = 0; i < 20000; ++i) ones += sample_token(two, {1.0f, 0, 1.0f}, r);
  EXPECT_NEAR(ones / 20000.0, 0.75, 0.015);
  Rng a(9), b(9);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_token(logits, {0.8f, 4, 0.9f}, a), sample_token(logits, {0.8f, 4, 0.9f}, b));
}

TEST(Sampling, RefusesOptionsOutsideTheirRange) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {0.0f, 1.0f};
  Rng r(1);
  auto refused = [&](SamplingOptions o, const std::string& flag) {
    try {
      check_sampling_options(o);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
      EXPECT_THROW(sample_token(logits, o, r), Error);
      return;
    }
    ADD_FAILURE() << "accepted a bad " << flag;
  };
  refused({nan, 40, 0.95f}, "--temperature");
  refused({inf, 40, 0.95f}, "--temperature");
  refused({-0.5f, 40, 0.95f}, "--temperature");
  refused({0.8f, -1, 0.95f}, "--top-k");
  refused({0.8f, 40, nan}, "--top-p");
  refused({0.8f, 40, 0.0f}, "--top-p");
  refused({0.8f, 40, 1.5f}, "--top-p");
  EXPECT_NO_THROW(check_sampling_options({0.0f, 0, 1.0f}));  // the edges of each range are allowed
}
