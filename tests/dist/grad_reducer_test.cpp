// GradientReducer: every bucket of the arena is reduced exactly once per step, as soon as the ranges
// marked ready complete it (what a backward hook relies on to overlap), the rest by finish(); and
// the values are the communicator's sums. A recording communicator stands in for the ranks: its
// all-reduce adds what the "other ranks" hold, so the test knows the exact expected sums.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/dist/grad_reducer.h"
#include "test_seed.h"

using namespace onebit;
using namespace onebit::dist;

namespace {

// A world of `world` ranks seen from rank 0: the other ranks' arenas are `others`; all_reduce_sum
// adds them in and records the range; the overlapped form records too and counts the joins.
class RecordingComm final : public Communicator {
 public:
  RecordingComm(int world, std::vector<float> others_sum) : world_(world), others_(std::move(others_sum)) {}
  const char* name() const override { return "recording"; }
  int rank() const override { return 0; }
  int world_size() const override { return world_; }
  int local_rank() const override { return 0; }
  void all_reduce_sum(float* buf, size_t n, Wire wire) override {
    const size_t off = static_cast<size_t>(buf - base);
    calls.push_back({off, n});
    wires.push_back(wire);
    for (size_t i = 0; i < n; ++i) buf[i] += others_[off + i];
  }
  void all_reduce_sum_overlapped(float* buf, size_t n, Wire wire) override {
    all_reduce_sum(buf, n, wire);
    ++overlapped;
  }
  void join_overlapped() override { joined_after.push_back(calls.size()); }
  void reduce_scatter_sum(float*, std::span<const size_t>) override {}
  void all_gather(float*, std::span<const size_t>) override {}
  void broadcast(float*, size_t, int) override {}
  void gather_to_host(const float*, std::span<const size_t>, float*, int) override {}
  void all_reduce_sum_host(double*, size_t) override {}
  void barrier() override {}

  float* base = nullptr;
  std::vector<std::pair<size_t, size_t>> calls;
  std::vector<Wire> wires;
  size_t overlapped = 0;
  std::vector<size_t> joined_after;  // calls.size() at each join

 private:
  int world_;
  std::vector<float> others_;
};

}  // namespace

TEST(GradientReducer, LayerByLayerReducesEachBucketOnceAsSoonAsItIsComplete) {
  Rng rng(test::test_seed());
  const size_t n = 1000 + rng.uniform_int(500), bucket = 64 + rng.uniform_int(100);
  std::vector<float> grads(n), others(n);
  for (float& x : grads) x = rng.normal();
  for (float& x : others) x = rng.normal();
  RecordingComm comm(3, others);
  comm.base = grads.data();
  GradientReducer red(comm, grads.data(), n, bucket, Wire::BF16);
  ASSERT_EQ(red.buckets(), (n + bucket - 1) / bucket);
  // "Layers" of random sizes, made ready from the end of the arena backwards, as backward does.
  std::vector<size_t> cuts = {0, n};
  for (int i = 0; i < 12; ++i) cuts.push_back(rng.uniform_int(n));
  std::sort(cuts.begin(), cuts.end());
  std::vector<float> expected = grads;
  for (size_t i = 0; i < n; ++i) expected[i] += others[i];
  for (size_t k = cuts.size() - 1; k > 0; --k) {
    const size_t lo = cuts[k - 1], hi = cuts[k];
    const size_t calls_before = comm.calls.size();
    red.ready(lo, hi - lo);
    // Every bucket that lies wholly in [lo, n) is reduced by now.
    const size_t complete = lo == 0 ? red.buckets() : red.buckets() - (lo + bucket - 1) / bucket;
    EXPECT_EQ(comm.calls.size(), complete) << "after making [" << lo << ", " << hi << ") ready";
    for (size_t c = calls_before; c < comm.calls.size(); ++c) EXPECT_EQ(comm.calls[c].first % bucket, 0u);
  }
  red.finish();
  EXPECT_EQ(comm.calls.size(), red.buckets());  // finish() had nothing left
  EXPECT_EQ(red.reduced_early(), red.buckets());
  EXPECT_EQ(grads, expected);
  EXPECT_TRUE(std::all_of(comm.wires.begin(), comm.wires.end(), [](Wire w) { return w == Wire::BF16; }));
  // Every bucket left overlapped with the backward, and finish() joined them once, after the last.
  EXPECT_EQ(comm.overlapped, red.buckets());
  EXPECT_EQ(comm.joined_after, std::vector<size_t>{red.buckets()});
  // Each bucket exactly once, covering the arena.
  std::sort(comm.calls.begin(), comm.calls.end());
  size_t at = 0;
  for (auto [off, len] : comm.calls) {
    EXPECT_EQ(off, at);
    at += len;
  }
  EXPECT_EQ(at, n);
}

TEST(GradientReducer, FinishReducesWhatIsLeftAndTheNextStepStartsFresh) {
  const size_t n = 300, bucket = 100;
  std::vector<float> grads(n, 1.0f), others(n, 2.0f);
  RecordingComm comm(2, others);
  comm.base = grads.data();
  GradientReducer red(comm, grads.data(), n, bucket, Wire::F32);
  red.ready(200, 100);  // the last bucket only
  EXPECT_EQ(comm.calls.size(), 1u);
  red.finish();
  EXPECT_EQ(comm.calls.size(), 3u);
  EXPECT_EQ(red.reduced_early(), 1u);
  EXPECT_TRUE(std::all_of(grads.begin(), grads.end(), [](float g) { return g == 3.0f; }));
  // Next step: the same ranges may be marked again; twice within one step is an error.
  red.ready(0, n);
  EXPECT_EQ(comm.calls.size(), 6u);
  EXPECT_THROW(red.ready(0, 10), Error);
  red.finish();
  EXPECT_THROW(red.ready(250, 100), Error);  // outside the arena
}

TEST(GradientReducer, AWorldOfOneStillGoesThroughItsCommunicator) {
  // Each bucket reaches the communicator whatever the world size: a world of one forced onto NCCL
  // runs the GPU path (tests/cuda), and the single-process communicator's sum leaves the values.
  std::vector<float> grads(10, 1.0f);
  RecordingComm comm(1, std::vector<float>(10, 0.0f));
  comm.base = grads.data();
  GradientReducer red(comm, grads.data(), grads.size(), 4, Wire::F32);
  red.ready(0, 10);
  red.finish();
  EXPECT_EQ(comm.calls, (std::vector<std::pair<size_t, size_t>>{{0, 4}, {4, 4}, {8, 2}}));
  auto single = single_process_communicator(kernels::cpu_ops());
  GradientReducer alone(*single, grads.data(), grads.size(), 4, Wire::BF16);
  alone.ready(0, 10);
  alone.finish();
  EXPECT_EQ(grads, std::vector<float>(10, 1.0f));
}
