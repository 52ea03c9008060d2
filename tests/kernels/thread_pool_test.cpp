// The kernels' thread pool: every item runs exactly once, many times in a row (job hand-over between
// generations), nested calls run inline, resizing works, and an exception thrown by an item (on the
// caller or on a worker) reaches the caller after every running item has finished.
#include "onebit/kernels/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "onebit/core/error.h"

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

TEST(ThreadPool, ExceptionOnAWorkerReachesTheCaller) {
  set_pool_threads(2);
  const auto caller = std::this_thread::get_id();
  for (int rep = 0; rep < 20; ++rep) {
    std::atomic<int> on_worker{0}, finished{0};
    try {
      parallel_for(64, [&](int64_t) {
        // Slow items so the worker claims some while the caller is busy.
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        if (std::this_thread::get_id() != caller) {
          on_worker.fetch_add(1);
          throw std::runtime_error("boom on worker");
        }
        finished.fetch_add(1);
      });
      // Only possible if the caller ran every item itself.
      EXPECT_EQ(on_worker.load(), 0);
      EXPECT_EQ(finished.load(), 64);
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "boom on worker");
      EXPECT_GT(on_worker.load(), 0);
    }
    EXPECT_FALSE(in_parallel_region());
  }
  // The pool still works afterwards.
  std::atomic<int> n{0};
  parallel_for(100, [&](int64_t) { n.fetch_add(1); });
  EXPECT_EQ(n.load(), 100);
}

TEST(ThreadPool, ExceptionOnTheCallerWaitsForRunningItems) {
  set_pool_threads(3);
  for (int rep = 0; rep < 20; ++rep) {
    std::atomic<int> running{0};
    std::atomic<bool> thrown{false};
    EXPECT_THROW(parallel_for(48,
                              [&](int64_t i) {
                                running.fetch_add(1);
                                std::this_thread::sleep_for(std::chrono::microseconds(100));
                                if (i == 0) {
                                  thrown.store(true);
                                  running.fetch_sub(1);
                                  throw Error("item 0 failed");
                                }
                                running.fetch_sub(1);
                              }),
                 Error);
    // parallel_for returned: nothing may still be running (the lambda's captures are about to die).
    EXPECT_EQ(running.load(), 0);
    EXPECT_TRUE(thrown.load());
    EXPECT_FALSE(in_parallel_region());
  }
  std::atomic<int> n{0};
  parallel_for(1000, [&](int64_t) { n.fetch_add(1); });
  EXPECT_EQ(n.load(), 1000);
}

TEST(ThreadPool, ResizingFromInsideAnItemIsAnError) {
  set_pool_threads(2);
  std::atomic<int> errors{0};
  parallel_for(4, [&](int64_t) {
    try {
      set_pool_threads(3);
    } catch (const Error&) {
      errors.fetch_add(1);
    }
  });
  EXPECT_EQ(errors.load(), 4);
  EXPECT_EQ(pool_threads(), 2);
}

}  // namespace
}  // namespace onebit::kernels::cpu
