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

// A fixed distribution p = (0.4, 0.25, 0.15, 0.1, 0.06, 0.04): each filter keeps exactly the tokens
// it should, and the kept ones are drawn in proportion to p renormalised over them (chi-square test,
// 40000 draws, fixed seed; the critical value is the 0.999 quantile so a correct sampler fails once
// in a thousand seeds, a wrong one by orders of magnitude).
TEST(Sampling, TopKTopPMinPFollowTheRenormalisedDistribution) {
  const std::vector<double> p = {0.4, 0.25, 0.15, 0.1, 0.06, 0.04};
  std::vector<float> logits;
  for (double v : p) logits.push_back((float)std::log(v));
  struct Case {
    SamplingOptions opt;
    size_t kept;
    double chi2_crit;  // 0.999 quantile of chi-square with kept - 1 degrees of freedom
  };
  SamplingOptions topk{1.0f, 3, 1.0f}, topp{1.0f, 0, 0.7f}, minp{1.0f, 0, 1.0f, 0.5f}, all{1.0f, 0, 1.0f};
  const std::vector<Case> cases = {
      {topk, 3, 13.82},  // the 3 most likely
      {topp, 3, 13.82},  // 0.4 + 0.25 < 0.7 <= 0.4 + 0.25 + 0.15
      {minp, 2, 10.83},  // p >= 0.5 * 0.4 = 0.2
      {all, 6, 20.52},
  };
  Rng r(12345);
  for (const Case& c : cases) {
    const int draws = 40000;
    std::vector<int> count(p.size(), 0);
    for (int i = 0; i < draws; ++i) count[sample_token(logits, c.opt, r)]++;
    double mass = 0;
    for (size_t i = 0; i < c.kept; ++i) mass += p[i];
    double chi2 = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      if (i >= c.kept) {
        EXPECT_EQ(count[i], 0) << "token " << i << " should have been filtered out";
        continue;
      }
      const double expect = draws * p[i] / mass;
      chi2 += (count[i] - expect) * (count[i] - expect) / expect;
    }
    EXPECT_LT(chi2, c.chi2_crit) << "kept " << c.kept;
  }
}

TEST(Sampling, RepeatPenaltyLowersRecentTokensOnly) {
  std::vector<float> logits = {2.0f, 2.0f, -1.0f, -1.0f};
  Rng r(3);
  SamplingOptions greedy{0.0f, 0, 1.0f};
  greedy.repeat_penalty = 1.5f;
  const std::vector<int32_t> history = {0, 0, 2};
  // Token 0 (positive logit) is divided, so greedy picks token 1.
  EXPECT_EQ(sample_token(logits, greedy, r, history), 1);
  // Outside the window the history does not count.
  greedy.repeat_last_n = 1;
  EXPECT_EQ(sample_token(logits, greedy, r, history), 0);
  // Frequencies: token 0's logit 2 / 1.5 against token 1's 2 (two tokens only, T = 1).
  std::vector<float> two = {2.0f, 2.0f};
  SamplingOptions s{1.0f, 0, 1.0f};
  s.repeat_penalty = 1.5f;
  int zeros = 0;
  const std::vector<int32_t> h0 = {0};
  for (int i = 0; i < 20000; ++i) zeros += sample_token(two, s, r, h0) == 0;
  const double want = std::exp(2.0 / 1.5) / (std::exp(2.0 / 1.5) + std::exp(2.0));
  EXPECT_NEAR(zeros / 20000.0, want, 0.015);
  // Negative logits are multiplied: token 0 (in the history) falls below token 1.
  std::vector<float> neg = {-1.0f, -1.0f};
  greedy.repeat_last_n = 64;
  EXPECT_EQ(sample_token(neg, greedy, r, h0), 1);
  SamplingOptions bad;
  bad.min_p = 1.0f;
  EXPECT_THROW(check_sampling_options(bad), Error);
  bad = SamplingOptions();
  bad.repeat_penalty = 0.0f;
  EXPECT_THROW(check_sampling_options(bad), Error);
  bad = SamplingOptions();
  bad.repeat_last_n = -1;
  EXPECT_THROW(check_sampling_options(bad), Error);
}
