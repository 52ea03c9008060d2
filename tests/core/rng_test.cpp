#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "test_seed.h"

namespace onebit {
namespace {

TEST(Rng, StateStringRestoresTheExactSequence) {
  Rng a(test::test_seed(1));
  for (int i = 0; i < 37; ++i) a.next_u64();
  const std::string s = a.state_string();
  ASSERT_EQ(s.size(), 64u);
  std::vector<uint64_t> expect;
  for (int i = 0; i < 100; ++i) expect.push_back(a.next_u64());
  Rng b(0);
  b.set_state_string(s);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(b.next_u64(), expect[i]) << i;
  EXPECT_THROW(b.set_state_string("xyz"), Error);
  EXPECT_THROW(b.set_state_string(std::string(64, 'g')), Error);
}

TEST(Rng, SameSeedSameStreamDifferentSeedDifferentStream) {
  const uint64_t seed = test::test_seed(2);
  Rng a(seed), b(seed), c(seed + 1);
  int same = 0;
  for (int i = 0; i < 64; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    same += x == c.next_u64();
  }
  EXPECT_LT(same, 2);
}

TEST(Rng, DistributionsHaveTheRightMoments) {
  Rng r(test::test_seed(3));
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0;
  std::vector<int> hist(7, 0);
  for (int i = 0; i < n; ++i) {
    const float u = r.uniform_float();
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    su += u;
    const double z = r.normal();
    sn += z;
    sn2 += z * z;
    hist[r.uniform_int(7)]++;
  }
  EXPECT_NEAR(su / n, 0.5, 0.005);
  EXPECT_NEAR(sn / n, 0.0, 0.01);
  EXPECT_NEAR(sn2 / n, 1.0, 0.02);
  for (int h : hist) EXPECT_NEAR(h, n / 7.0, 5 * std::sqrt(n / 7.0));
}

TEST(MixSeed, SpreadsNearbyInputs) {
  EXPECT_NE(mix_seed(1, 0), mix_seed(2, 0));
  EXPECT_NE(mix_seed(1, 1), mix_seed(1, 2));
  EXPECT_EQ(mix_seed(42, 7), mix_seed(42, 7));
}

}  // namespace
}  // namespace onebit
