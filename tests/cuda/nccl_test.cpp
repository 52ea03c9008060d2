// The NCCL communicator on one GPU, in process: a world of one forced onto NCCL
// (ONEBIT_DIST_BACKEND=nccl) runs the same collectives, streams and events as many ranks, and a sum
// over one rank has a known result (the values themselves, or their bf16 rounding on a bf16 wire),
// so ordering mistakes show as wrong values:
//   - each collective sees the compute stream's queued work and the compute work after it sees the
//     collective's result (queued, never synchronised, in between);
//   - an overlapped all-reduce lets compute go on and join_overlapped() fences it;
//   - a tiny model's backward with the grads-ready hook starting bucket all-reduces layer by layer
//     (small buckets, so many of them leave during the backward) ends with exactly the plain
//     backward's gradients (f32 wire) or their bf16 rounding (bf16 wire).
// Skipped without a GPU; built only with NCCL.
#include <gtest/gtest.h>

#include <cstring>

#include "cuda_test_util.h"
#include "onebit/dist/communicator.h"
#include "onebit/dist/grad_reducer.h"
#include "onebit/kernels/backend.h"
#include "onebit/model/transformer.h"

using namespace onebit;
using namespace onebit::kernels::cuda::testing;

namespace {

dist::LaunchEnv forced_nccl() {
  dist::LaunchEnv e;
  e.backend = "nccl";
  return e;
}

std::vector<float> bf16_round(std::vector<float> v) { return bf16_exact(std::move(v)); }

// A device arena through the CUDA backend (its stream orders everything the test queues).
struct Arena {
  explicit Arena(size_t n) : ops(kernels::cuda_ops()), n(n), p(ops.alloc(n)) {}
  ~Arena() { ops.free(p); }
  void put(const std::vector<float>& h) { ops.upload(p, h.data(), n); }
  std::vector<float> take() const {
    std::vector<float> h(n);
    ops.download(h.data(), p, n);
    return h;
  }
  kernels::Ops<float, kernels::bf16>& ops;
  size_t n;
  float* p;
};

void expect_bitwise(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && bad++ == 0) first = i;
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " values differ; first [" << first << "] got "
                     << got[first] << " want " << want[first];
}

}  // namespace

TEST(NcclWorldOfOne, CollectivesAreOrderedAgainstTheComputeStream) {
  ONEBIT_REQUIRE_GPU();
  auto comm = dist::open_communicator(dist::Device::Cuda, forced_nccl(), kernels::cuda_ops());
  ASSERT_STREQ(comm->name(), "nccl");
  ASSERT_EQ(comm->world_size(), 1);
  // Large enough that the queued compute work before each collective takes a while.
  const size_t n = size_t{16} << 20;
  const auto x = randn(n, test_seed()), y = randn(n, test_seed());
  Arena a(n), b(n);
  b.put(y);
  auto& ops = kernels::cuda_ops();
  // expected = x + 8 y, computed in the same f32 steps on the host.
  std::vector<float> expected = x;
  for (int k = 0; k < 8; ++k)
    for (size_t i = 0; i < n; ++i) expected[i] += y[i];

  for (dist::Wire wire : {dist::Wire::F32, dist::Wire::BF16}) {
    SCOPED_TRACE(wire == dist::Wire::F32 ? "f32 wire" : "bf16 wire");
    a.put(x);
    for (int k = 0; k < 8; ++k) ops.axpy(a.p, 1.0f, b.p, n);  // queued on the compute stream
    comm->all_reduce_sum(a.p, n, wire);                     // must wait for them
    ops.axpy(a.p, 1.0f, b.p, n);                            // must wait for the collective
    std::vector<float> want = wire == dist::Wire::BF16 ? bf16_round(expected) : expected;
    for (size_t i = 0; i < n; ++i) want[i] += y[i];
    expect_bitwise(a.take(), want, "all_reduce_sum");
  }

  // Overlapped: compute work on other memory goes on; after the join, compute sees the sum.
  a.put(x);
  comm->all_reduce_sum_overlapped(a.p, n, dist::Wire::BF16);
  for (int k = 0; k < 4; ++k) ops.axpy(b.p, 0.0f, b.p, n);  // unrelated compute meanwhile
  comm->join_overlapped();
  ops.axpy(a.p, 1.0f, b.p, n);
  std::vector<float> want = bf16_round(x);
  for (size_t i = 0; i < n; ++i) want[i] += y[i];
  expect_bitwise(a.take(), want, "overlapped all_reduce then join");

  // The ZeRO-1 collectives of one rank leave (all_gather, broadcast) or copy (gather_to_host) the part.
  a.put(x);
  const std::vector<size_t> counts = {n};
  comm->reduce_scatter_sum(a.p, counts);
  comm->all_gather(a.p, counts);
  comm->broadcast(a.p, n, 0);
  expect_bitwise(a.take(), x, "reduce_scatter / all_gather / broadcast");
  std::vector<float> host(n);
  comm->gather_to_host(a.p, counts, host.data(), 0);
  expect_bitwise(host, x, "gather_to_host");
  double scalars[2] = {1.25, -3.5};
  comm->all_reduce_sum_host(scalars, 2);
  EXPECT_EQ(scalars[0], 1.25);
  EXPECT_EQ(scalars[1], -3.5);
}

TEST(NcclWorldOfOne, BucketsStartedFromTheBackwardHookGiveThePlainGradients) {
  ONEBIT_REQUIRE_GPU();
  model::ModelConfig c;
  c.vocab_size = 512;
  c.hidden_size = 128;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 256;
  c.max_position_embeddings = 64;
  const int B = 4, T = 32;
  const uint64_t seed = test_seed();
  std::vector<int32_t> tokens(B * T), targets(B * T);
  std::mt19937_64 g(seed);
  for (auto& t : tokens) t = static_cast<int32_t>(g() % c.vocab_size);
  for (auto& t : targets) t = static_cast<int32_t>(g() % c.vocab_size);

  model::Transformer m(c, kernels::cuda_ops());
  m.init_weights(seed + 1);
  m.set_quant_state({model::QuantPhase::Hard, 0});
  const size_t n = m.num_params();
  auto grads_of_a_step = [&](const model::Transformer::GradsReadyHook& hook) {
    m.zero_grad();
    m.forward_async(tokens.data(), targets.data(), B, T);  // a first micro-batch: accumulation
    m.backward(0.5f);
    m.forward_async(tokens.data(), targets.data(), B, T);
    m.set_grads_ready_hook(hook);
    m.backward(0.5f);
    m.set_grads_ready_hook({});
  };
  grads_of_a_step({});
  std::vector<float> plain(n);
  kernels::cuda_ops().download(plain.data(), m.grads().data(), n);

  auto comm = dist::open_communicator(dist::Device::Cuda, forced_nccl(), kernels::cuda_ops());
  // Buckets of 1/16 of the arena: most are complete, and start, while the backward is still running.
  const size_t bucket = (n / 16 + 63) / 64 * 64;
  for (dist::Wire wire : {dist::Wire::F32, dist::Wire::BF16}) {
    SCOPED_TRACE(wire == dist::Wire::F32 ? "f32 wire" : "bf16 wire");
    dist::GradientReducer reducer(*comm, m.grads().data(), n, bucket, wire);
    grads_of_a_step([&](size_t offset, size_t count) { reducer.ready(offset, count); });
    reducer.finish();
    EXPECT_EQ(reducer.reduced_early(), reducer.buckets()) << "every bucket should leave from the hook";
    EXPECT_GE(reducer.buckets(), 16u);
    std::vector<float> got(n);
    kernels::cuda_ops().download(got.data(), m.grads().data(), n);
    expect_bitwise(got, wire == dist::Wire::BF16 ? bf16_round(plain) : plain, "gradients after the reducer");
  }
}
