// The MPI communicator's collectives on fresh random data, run by ctest under `mpirun -np 2` and
// `-np 3` (tests/dist/CMakeLists.txt). Every rank can compute every rank's input from the shared
// seed, so each checks its result against sums done locally in double. Parts of uneven size, empty
// buffers and a gradient reducer over the real communicator are covered.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "onebit/core/rng.h"
#include "onebit/dist/communicator.h"
#include "onebit/dist/grad_reducer.h"
#include "test_seed.h"

using namespace onebit;
using namespace onebit::dist;

namespace {

Communicator& comm() {
  static std::unique_ptr<Communicator> c = open_communicator(Device::Cpu, detect_launch(), kernels::cpu_ops());
  return *c;
}

// One seed for all ranks: rank 0's, shared through the host sum (below 2^52, exact in a double).
uint64_t shared_seed() {
  static uint64_t s = [] {
    double v = comm().rank() == 0 ? static_cast<double>(test::test_seed() >> 12) : 0.0;
    comm().all_reduce_sum_host(&v, 1);
    return static_cast<uint64_t>(v);
  }();
  return s;
}

// Rank r's input for a test: n normal values from (seed, salt, r).
std::vector<float> input(int r, size_t n, uint64_t salt) {
  Rng rng(mix_seed(mix_seed(shared_seed(), salt), static_cast<uint64_t>(r)));
  std::vector<float> v(n);
  for (float& x : v) x = rng.normal();
  return v;
}

std::vector<double> sum_over_ranks(size_t n, uint64_t salt) {
  std::vector<double> s(n, 0.0);
  for (int r = 0; r < comm().world_size(); ++r) {
    const std::vector<float> v = input(r, n, salt);
    for (size_t i = 0; i < n; ++i) s[i] += v[i];
  }
  return s;
}

// A sum of world_size floats in any order: within a few ulps of the double sum.
void expect_sum(float got, double want, size_t i) {
  ASSERT_NEAR(got, want, 1e-6 * (1.0 + std::abs(want)) * comm().world_size()) << "index " << i;
}

}  // namespace

TEST(MpiCollectives, LaunchedAsExpected) {
  std::printf("rank %d of %d (%s)\n", comm().rank(), comm().world_size(), comm().name());
  EXPECT_GE(comm().world_size(), 2) << "run this binary under mpirun -np N";
  EXPECT_STREQ(comm().name(), "mpi");
}

TEST(MpiCollectives, AllReduceSum) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{300001}}) {
    std::vector<float> v = input(comm().rank(), n, 1 + n);
    comm().all_reduce_sum(v.data(), n, Wire::F32);
    const std::vector<double> want = sum_over_ranks(n, 1 + n);
    for (size_t i = 0; i < n; ++i) expect_sum(v[i], want[i], i);
  }
}

TEST(MpiCollectives, ReduceScatterAllGatherBroadcastGather) {
  const int W = comm().world_size(), me = comm().rank();
  const size_t n = 10007;
  const std::vector<size_t> counts = split_counts(n, W);
  const size_t off = part_offset(counts, me), mine = counts[static_cast<size_t>(me)];

  std::vector<float> v = input(me, n, 2);
  comm().reduce_scatter_sum(v.data(), counts);
  const std::vector<double> want = sum_over_ranks(n, 2);
  for (size_t i = off; i < off + mine; ++i) expect_sum(v[i], want[i], i);

  // All-gather: each rank's own part of its own input, everywhere.
  std::vector<float> g = input(me, n, 3);
  comm().all_gather(g.data(), counts);
  for (int r = 0; r < W; ++r) {
    const std::vector<float> theirs = input(r, n, 3);
    const size_t o = part_offset(counts, r);
    for (size_t i = o; i < o + counts[static_cast<size_t>(r)]; ++i) ASSERT_EQ(g[i], theirs[i]) << "rank " << r << " index " << i;
  }

  // Broadcast from the last rank.
  std::vector<float> b = input(me, 777, 4);
  comm().broadcast(b.data(), b.size(), W - 1);
  EXPECT_EQ(b, input(W - 1, 777, 4));

  // Gather every rank's part to rank 0's host array (the optimizer state for a checkpoint).
  std::vector<float> part(mine);
  const std::vector<float> src = input(me, n, 5);
  std::copy(src.begin() + static_cast<long>(off), src.begin() + static_cast<long>(off + mine), part.begin());
  std::vector<float> full(me == 0 ? n : 0);
  comm().gather_to_host(part.data(), counts, full.data(), 0);
  if (me == 0)
    for (int r = 0; r < W; ++r) {
      const std::vector<float> theirs = input(r, n, 5);
      const size_t o = part_offset(counts, r);
      EXPECT_TRUE(std::equal(full.begin() + static_cast<long>(o), full.begin() + static_cast<long>(o + counts[static_cast<size_t>(r)]),
                             theirs.begin() + static_cast<long>(o)))
          << "rank " << r << "'s part";
    }
  comm().barrier();
}

TEST(MpiCollectives, HostScalarsAndGradientBuckets) {
  const int W = comm().world_size();
  double h[2] = {1.0, static_cast<double>(comm().rank())};
  comm().all_reduce_sum_host(h, 2);
  EXPECT_EQ(h[0], W);
  EXPECT_EQ(h[1], W * (W - 1) / 2.0);

  const size_t n = 5000;
  std::vector<float> grads = input(comm().rank(), n, 6);
  GradientReducer red(comm(), grads.data(), n, 333, Wire::F32);
  red.ready(2000, 3000);
  red.ready(0, 2000);
  red.finish();
  const std::vector<double> want = sum_over_ranks(n, 6);
  for (size_t i = 0; i < n; ++i) expect_sum(grads[i], want[i], i);
}
