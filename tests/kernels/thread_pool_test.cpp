// The kernels' thread pool: every item runs exactly once, many times in a row (job hand-over between
// generations), nested calls run inline, and resizing works.
#include "onebit/kernels/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace onebit::kernels::cpu {
namespace {

TEST(ThreadPool, EveryItemExactlyOnceAcrossManyJobs) {
  for (int threads : {1, 2, 3}) {
    set_pool_threads(threads);
    EXPECT_EQ(pool_threads(), threads);
    std::vector<std::atomic<int>> hits(1000);
    for (int job = 0; job < 2000; ++job) {
      const int n = 1 + job % 37;
      parallel_for(n, [&](int64_t i) { hits[i].fetch_add(1); });
    }
    int64_t expected_total = 0;
    for (int job = 0; job < 2000; ++job) expected_total += 1 + job % 37;
    int64_t total = 0;
    for (auto& h : hits) total += h.load();
    EXPECT_EQ(total, expected_total);
    // Item i ran once per job with n > i.
    for (int i = 0; i < 37; ++i) {
      int expect = 0;
      for (int job = 0; job < 2000; ++job) expect += (1 + job % 37) > i;
      EXPECT_EQ(hits[i].load(), expect) << i;
    }
  }
}

TEST(ThreadPool, NestedCallsRunInline) {
  set_pool_threads(2);
  std::atomic<int> inner{0};
  parallel_for(8, [&](int64_t) {
    EXPECT_TRUE(in_parallel_region());
    parallel_for(5, [&](int64_t) { inner.fetch_add(1); });
  });
  EXPECT_EQ(inner.load(), 40);
  EXPECT_FALSE(in_parallel_region());
}

TEST(ThreadPool, RangesCoverExactly) {
  set_pool_threads(2);
  for (int64_t n : {0, 1, 5, 100000, 1234567}) {
    std::vector<int> seen(n, 0);
    parallel_ranges(n, 1000, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) seen[i]++;
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << n << " " << i;
  }
}

}  // namespace
}  // namespace onebit::kernels::cpu
