// The AVX-512 SGEMM's many-thread schedule (sgemm_plan.h): on fresh random shapes, odd sizes included, and on
// shapes that take K segments and packing chunks, the result matches the double-precision reference and has the
// same bits at 1, 2, 3, 7 and 16 threads (more threads than cores is fine for correctness); the plan covers
// every tile and K block exactly once, keeps the order of the sums a function of the shape, uses two pool jobs
// (barriers) per chunk, and spreads the 25m model's GEMMs evenly over 16 threads. The model shapes also hold
// the two loop orders of a task to the same bits: at 0 and 1 threads a task's C tile passes 1 MB and its K
// blocks run innermost (e.g. 2048 x 1408 x 512), at 16 threads the tiles are small and the K blocks outermost.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "test_seed.h"
#include "onebit/kernels/cpu/reference.h"
#include "onebit/kernels/cpu/sgemm_avx512.h"
#include "onebit/kernels/cpu/sgemm_plan.h"
#include "onebit/kernels/cpu/thread_pool.h"

namespace onebit::kernels::cpu {
namespace {

using testing::randn;
using Vec = std::vector<float>;

struct Shape {
  int M, N, K;
};

// The 25m preset's GEMMs (bench/gemm_shapes.cpp): layers at B*T = 2048 tokens, the LM head in 262-row chunks.
const Shape kModelShapes[] = {{2048, 512, 512},  {2048, 1408, 512},  {2048, 512, 1408}, {512, 512, 2048},
                              {1408, 512, 2048}, {512, 1408, 2048},  {262, 32000, 512}, {262, 512, 32000},
                              {32000, 512, 262}};

class ThreadsGuard {  // restores the pool size a test changed
 public:
  ThreadsGuard() : before_(pool_threads()) {}
  ~ThreadsGuard() { set_pool_threads(before_); }

 private:
  int before_;
};

// Random shape with odd sizes: anything from a single edge tile to several MC/KC blocks.
Shape random_shape(std::mt19937_64& g) {
  std::uniform_int_distribution<int> m(1, 420), n(1, 300), k(1, 700);
  return {m(g), n(g), k(g)};
}

void check_shape(const Shape& s, bool ta, bool tb, uint64_t seed) {
  SCOPED_TRACE("M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
               " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb));
  std::mt19937_64 g(seed);
  const float alpha = std::uniform_real_distribution<float>(-2.0f, 2.0f)(g);
  const float beta = g() % 3 == 0 ? 0.0f : std::uniform_real_distribution<float>(-1.5f, 1.5f)(g);
  // A's leading dimension above the minimum too, its padding NaN: the packs must step by lda, not by K or M.
  const int lda = (ta ? s.M : s.K) + (int)(g() % 4), ldb = tb ? s.K : s.N, ldc = s.N + (int)(g() % 5);
  Vec A = randn<float>((size_t)(ta ? s.K : s.M) * lda, seed + 1);
  const Vec B = randn<float>((size_t)s.K * s.N, seed + 2);
  const int a_rows = ta ? s.K : s.M, a_cols = ta ? s.M : s.K;
  for (int i = 0; i < a_rows; ++i)  // a read of the padding would make NaNs
    for (int j = a_cols; j < lda; ++j) A[(size_t)i * lda + j] = NAN;
  Vec C0 = randn<float>((size_t)s.M * ldc, seed + 3);
  if (beta == 0.0f) std::fill(C0.begin(), C0.end(), NAN);  // BLAS semantics: C is not read
  // The reference in double; the same on |A|, |B|, |C| bounds each element's rounding error.
  Vec want = C0, bound = C0;
  ref::gemm<float>(ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);
  Vec absA(A), absB(B);
  for (float& x : absA) x = std::abs(x);
  for (float& x : absB) x = std::abs(x);
  for (float& x : bound) x = std::abs(x);
  ref::gemm<float>(ta, tb, s.M, s.N, s.K, std::abs(alpha), absA.data(), lda, absB.data(), ldb, std::abs(beta),
                         bound.data(), ldc);

  ThreadsGuard guard;
  Vec first;
  for (int threads : {0, 1, 2, 3, 7, 16}) {  // 0: the serial call, as from inside a pool item
    if (threads > 0) set_pool_threads(threads);
    Vec C = C0;
    sgemm_avx512(ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, threads > 0);
    for (int i = 0; i < s.M; ++i)
      for (int j = 0; j < s.N; ++j) {
        const size_t at = (size_t)i * ldc + j;
        ASSERT_NEAR(C[at], want[at], 1e-5 * bound[at] + 1e-6) << "C[" << i << "," << j << "], threads " << threads;
      }
    for (int i = 0; i < s.M; ++i)  // the padding beyond N is never written
      for (int j = s.N; j < ldc; ++j) ASSERT_EQ(std::isnan(C[(size_t)i * ldc + j]), std::isnan(C0[(size_t)i * ldc + j]));
    if (first.empty()) {
      first = C;
      continue;
    }
    for (size_t i = 0; i < C.size(); ++i)
      if (!(std::isnan(C[i]) && std::isnan(first[i]))) {
        ASSERT_EQ(C[i], first[i]) << "element " << i << " differs between 1 thread and " << threads;
      }
  }
}

bool skip_without_avx512() { return !cpu_has_avx512f(); }

TEST(SgemmThreads, RandomShapesMatchReferenceWithTheSameBitsAtAnyThreadCount) {
  if (skip_without_avx512()) GTEST_SKIP() << "this CPU (or OS) lacks AVX-512F";
  const uint64_t seed = onebit::test::test_seed(1);
  std::mt19937_64 g(seed);
  for (int i = 0; i < 12; ++i) check_shape(random_shape(g), g() & 1, g() & 2, g());
}

// Shapes that take the plan's rarer branches; each asserts that it does, so the test cannot drift away from them.
TEST(SgemmThreads, SegmentsAndChunksMatchReferenceWithTheSameBitsAtAnyThreadCount) {
  if (skip_without_avx512()) GTEST_SKIP() << "this CPU (or OS) lacks AVX-512F";
  const uint64_t seed = onebit::test::test_seed(2);
  std::mt19937_64 g(seed);
  // K segments: narrow C, long K (a small weight gradient), odd edges.
  const Shape segments{50 + (int)(g() % 11), 70 + (int)(g() % 31), 2100 + (int)(g() % 300)};
  EXPECT_GT(plan_sgemm(segments.M, segments.N, segments.K, 16).chunk(0, 0, 0).segments, 1);
  // N chunks: the packed B of all of K x N exceeds the budget (the LM head's forward).
  const Shape nchunks{5 + (int)(g() % 9), 16400 + (int)(g() % 97), 511};
  EXPECT_GT(plan_sgemm(nchunks.M, nchunks.N, nchunks.K, 16).nchunks(), 1);
  // M chunks: the same, A the larger (the LM head's weight gradient).
  const Shape mchunks{16400 + (int)(g() % 97), 5 + (int)(g() % 9), 511};
  EXPECT_GT(plan_sgemm(mchunks.M, mchunks.N, mchunks.K, 16).mchunks(), 1);
  // K chunks: the N panels and the rows every chunk has room for do not fit all of K (the LM head's dx, cheaper).
  const Shape kchunks{3 + (int)(g() % 9), 33 + (int)(g() % 20), 160100 + (int)(g() % 1000)};
  EXPECT_GT(plan_sgemm(kchunks.M, kchunks.N, kchunks.K, 16).kchunks(), 1);
  for (const Shape& s : {segments, nchunks, mchunks, kchunks}) check_shape(s, g() & 1, g() & 2, g());
}

// Batch invariance: a row's result has the same bits whatever the number of rows, also where K is cut into
// segments and chunks (the plan reads N and K only for those).
TEST(SgemmThreads, RowsHaveTheSameBitsWhateverTheNumberOfRows) {
  if (skip_without_avx512()) GTEST_SKIP() << "this CPU (or OS) lacks AVX-512F";
  const uint64_t seed = onebit::test::test_seed(5);
  std::mt19937_64 g(seed);
  ThreadsGuard guard;
  set_pool_threads(3);
  // Segments (a plan that counted C's tiles would give these M rows fewer than 15 rows alone), then K chunks.
  for (const Shape& s : {Shape{800 + (int)(g() % 100), 400 + (int)(g() % 64), 4000 + (int)(g() % 300)},
                         Shape{40 + (int)(g() % 20), 33, 160100 + (int)(g() % 500)}}) {
    const bool ta = g() & 1, tb = g() & 1;
    const int lda = ta ? s.M : s.K, ldb = tb ? s.K : s.N;
    const Vec A = randn<float>((size_t)s.M * s.K, seed + 1), B = randn<float>((size_t)s.K * s.N, seed + 2);
    Vec all((size_t)s.M * s.N);
    sgemm_avx512(ta, tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, all.data(), s.N, true);
    const int r0 = 1 + (int)(g() % 7), rows = 5 + (int)(g() % 11);  // rows [r0, r0 + rows) alone
    Vec part((size_t)rows * s.N);
    const float* Ar = ta ? A.data() + r0 : A.data() + (size_t)r0 * lda;
    sgemm_avx512(ta, tb, rows, s.N, s.K, 1.0f, Ar, lda, B.data(), ldb, 0.0f, part.data(), s.N, true);
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < s.N; ++j)
        ASSERT_EQ(part[(size_t)i * s.N + j], all[(size_t)(r0 + i) * s.N + j])
            << "row " << r0 + i << " col " << j << " of M=" << s.M << " N=" << s.N << " K=" << s.K;
  }
}

// Every (micro-tile, K block) of C is computed by exactly one task, for random shapes and thread counts.
TEST(SgemmPlan, TasksCoverEveryTileAndKBlockOnce) {
  const uint64_t seed = onebit::test::test_seed(3);
  std::mt19937_64 g(seed);
  std::vector<Shape> shapes(std::begin(kModelShapes), std::end(kModelShapes));
  for (int i = 0; i < 40; ++i) shapes.push_back(random_shape(g));
  shapes.push_back({13, 16400, 511});
  shapes.push_back({16400, 13, 511});
  shapes.push_back({771, 513, 10050});  // K, M and N chunks at once
  shapes.push_back({7, 40, 160500});
  for (const Shape& s : shapes)
    for (int threads : {1, 2, 3, 7, 16, 64}) {
      const SgemmPlan p = plan_sgemm(s.M, s.N, s.K, threads);
      SCOPED_TRACE("M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
                   " threads=" + std::to_string(threads));
      ASSERT_GE(p.kc * p.kblocks, s.K);
      ASSERT_LT(p.kc * (p.kblocks - 1), s.K);  // no empty K block
      std::vector<uint8_t> hits((size_t)p.mpanels * p.npanels * p.kblocks, 0);
      for (int kci = 0; kci < p.kchunks(); ++kci)
        for (int mci = 0; mci < p.mchunks(); ++mci)
        for (int nci = 0; nci < p.nchunks(); ++nci) {
          const SgemmChunk c = p.chunk(kci, mci, nci);
          ASSERT_LE((int64_t)c.kblocks * p.kc * (c.mpanels * kSgemmMR + c.npanels * kSgemmNR), kSgemmPackBudget);
          if (threads == 1) {
            EXPECT_EQ(c.tasks(), c.segments);
          }
          for (int t = 0; t < c.tasks(); ++t) {
            const SgemmTask k = c.task(t);
            for (int ip = k.ip0; ip < k.ip1; ++ip)
              for (int jq = k.jq0; jq < k.jq1; ++jq)
                for (int kb = k.kb0; kb < k.kb1; ++kb)
                  ++hits[((size_t)(c.ip0 + ip) * p.npanels + c.jp0 + jq) * p.kblocks + c.kb0 + kb];
          }
        }
      for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i], 1) << "tile/block " << i;
    }
}

// The order of every sum (K blocks, K chunks, segments) is a function of N and K, never of the thread count or of
// M (the number of rows: batch invariance).
TEST(SgemmPlan, SummationOrderDependsOnNAndKOnly) {
  const uint64_t seed = onebit::test::test_seed(4);
  std::mt19937_64 g(seed);
  std::vector<Shape> shapes(std::begin(kModelShapes), std::end(kModelShapes));
  for (int i = 0; i < 40; ++i) shapes.push_back(random_shape(g));
  shapes.push_back({7, 40, 160500});
  for (const Shape& s : shapes) {
    const SgemmPlan one = plan_sgemm(s.M, s.N, s.K, 1);
    for (int threads : {1, 2, 3, 7, 16, 64}) {
      const int M = threads == 1 ? 1 + (int)(g() % 40000) : s.M;  // another number of rows, one thread
      const SgemmPlan p = plan_sgemm(M, s.N, s.K, threads);
      ASSERT_EQ(p.kblocks, one.kblocks);
      ASSERT_EQ(p.kc, one.kc);
      ASSERT_EQ(p.kchunk, one.kchunk);
      for (int kci = 0; kci < p.kchunks(); ++kci)
        ASSERT_EQ(p.chunk(kci, 0, 0).segments, one.chunk(kci, 0, 0).segments);
    }
  }
}

// Synchronisation: two pool jobs per chunk (pack B, then the tasks), however long K is; the counted jobs are the
// plan's. The old schedule ran three per K block (24 for this dW shape).
TEST(SgemmThreads, TwoPoolJobsPerChunkNotPerKBlock) {
  if (skip_without_avx512()) GTEST_SKIP() << "this CPU (or OS) lacks AVX-512F";
  ThreadsGuard guard;
  set_pool_threads(3);
  for (const Shape& s : {Shape{512, 512, 2048}, Shape{262, 512, 32000}, Shape{262, 32000, 512}}) {
    const Vec A = randn<float>((size_t)s.M * s.K, 1), B = randn<float>((size_t)s.K * s.N, 2);
    Vec C((size_t)s.M * s.N);
    const SgemmPlan p = plan_sgemm(s.M, s.N, s.K, 3);
    const uint64_t before = pool_jobs();
    sgemm_avx512(false, false, s.M, s.N, s.K, 1.0f, A.data(), s.K, B.data(), s.N, 0.0f, C.data(), s.N, true);
    EXPECT_EQ(pool_jobs() - before, (uint64_t)sgemm_balance(p).jobs);
    EXPECT_EQ(sgemm_balance(p).jobs, 2 * p.kchunks() * p.mchunks() * p.nchunks());
    // At most 5 chunks here: the LM head's dx (K = 32000, 125 K blocks) takes 5 K chunks.
    EXPECT_LE(sgemm_balance(p).jobs, 10) << "M=" << s.M << " N=" << s.N << " K=" << s.K;
  }
}

// Work balance at 16 threads on the model's shapes, from the plan alone (no timing): the busiest thread does at
// most ~10% more micro-kernel calls than the mean.
TEST(SgemmPlan, ModelShapesAreEvenAt16Threads) {
  for (const Shape& s : kModelShapes) {
    const SgemmBalance b = sgemm_balance(plan_sgemm(s.M, s.N, s.K, 16));
    EXPECT_GE(b.efficiency(), 0.9) << "M=" << s.M << " N=" << s.N << " K=" << s.K << ": " << b.tasks << " tasks";
  }
}

}  // namespace
}  // namespace onebit::kernels::cpu
