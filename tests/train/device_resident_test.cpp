// The trainer's step stays in backend memory: a decorator of the fast CPU backend counts every host
// transfer of one optimizer step (forward/backward over micro-batches, grad norm, clip, AdamW, weight
// stats) and allows only the batch uploads and the three logged read-backs. And the backend's fused
// clip + AdamW gives bitwise what clipping the gradients on the host and then stepping gave.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "forwarding_ops.h"
#include "onebit/core/rng.h"
#include "onebit/data/batch_source.h"
#include "onebit/model/transformer.h"
#include "onebit/train/adamw.h"
#include "onebit/train/trainer.h"
#include "train_test_util.h"
#include "test_seed.h"

using namespace onebit;
using namespace onebit::train;
using onebit::test::test_seed;

namespace {

// Counts the host transfers (calls and bytes) that pass through it.
class TransferCounter final : public kernels::testing::ForwardingOps<float> {
 public:
  using ForwardingOps::ForwardingOps;
  int downloads = 0, uploads = 0;
  int downloads_after_update = 0;  // since the last adamw_step was queued
  bool updated = false;
  size_t download_bytes_total = 0;
  void reset() { downloads = uploads = downloads_after_update = 0, download_bytes_total = 0, updated = false; }

  void adamw_step(float* p, const float* g, float* m, float* v, const kernels::AdamWRange* ranges, size_t num_ranges,
                  const kernels::AdamWHyper& h, const float* clip) override {
    updated = true;
    ForwardingOps::adamw_step(p, g, m, v, ranges, num_ranges, h, clip);
  }

  void upload(float* d, const float* h, size_t n) override {
    ++uploads;
    ForwardingOps::upload(d, h, n);
  }
  void download(float* h, const float* s, size_t n) override {
    ++downloads;
    downloads_after_update += updated;
    download_bytes_total += n * sizeof(float);
    ForwardingOps::download(h, s, n);
  }
  void upload_bytes(void* d, const void* h, size_t bytes) override {
    ++uploads;
    ForwardingOps::upload_bytes(d, h, bytes);
  }
  void download_bytes(void* h, const void* s, size_t bytes) override {
    ++downloads;
    downloads_after_update += updated;
    download_bytes_total += bytes;
    ForwardingOps::download_bytes(h, s, bytes);
  }
};

using onebit::train::testing::micro_config;

class RandomSource final : public data::BatchSource {
 public:
  RandomSource(int vocab, uint64_t seed) : vocab_(vocab), rng_(seed) {}
  void next_batch(int B, int T, int32_t* in, int32_t* tg) override {
    for (int i = 0; i < B * T; ++i) {
      in[i] = static_cast<int32_t>(rng_.uniform_int(static_cast<uint64_t>(vocab_)));
      tg[i] = static_cast<int32_t>(rng_.uniform_int(static_cast<uint64_t>(vocab_)));
    }
  }
  json state() const override { return json::object(); }
  void restore(const json&) override {}
  std::string describe() const override { return "random"; }

 private:
  int vocab_;
  Rng rng_;
};

std::vector<DecayRange> ranges_of(const model::Transformer& m) {
  std::vector<DecayRange> r;
  for (const auto& p : m.params_info()) r.push_back({p.offset, p.numel, p.decay});
  return r;
}

TEST(DeviceResident, OneTrainingStepReadsBackOnlyTheLoggedScalars) {
  TransferCounter ops(kernels::cpu_ops());
  model::Transformer m(micro_config(), ops);
  m.init_weights(test_seed());
  m.set_quant_state({model::QuantPhase::Hard, 0.0f});
  AdamW adam(m.num_params(), {}, ranges_of(m), ops);
  RandomSource src(m.config().vocab_size, test_seed(1));
  const int B = 2, T = 8, accum = 3;
  auto step = [&] {
    const float loss = accumulate_gradients(m, src, B, T, accum, 7);
    adam.clip_and_step(m.params().data(), m.grads().data(), 1e-3f, 0.01);
    const double gnorm = adam.read_grad_norm();
    const model::WeightStats ws = m.weight_stats();
    EXPECT_TRUE(std::isfinite(loss));
    EXPECT_GT(gnorm, 0.01);  // clipping was active
    EXPECT_NEAR(ws.neg + ws.zero + ws.pos, 1.0, 1e-12);
  };
  step();  // the first step allocates the arena (RoPE tables are uploaded then) and the loss slots
  ops.reset();
  step();
  // Read back: the micro-batches' losses (one download of accum f64), the grad norm (one f64) and the
  // code counts (int64[3]); nothing else, however many layers and micro-batches.
  EXPECT_EQ(ops.downloads, 3);
  EXPECT_EQ(ops.download_bytes_total, accum * sizeof(double) + sizeof(double) + 3 * sizeof(int64_t));
  // Sent: each micro-batch's tokens and targets, once.
  EXPECT_EQ(ops.uploads, 2 * accum);
}

// The trainer's order (metrics on: request_weight_stats before the step's forwards): every read-back comes
// before the update is queued (the losses and the counting forward's code counts in take_losses, the norm
// between the clip factor and AdamW), so on a GPU the host logs while the update runs instead of waiting for
// it. The counts read early are the ones weight_stats computes afresh from the same weights.
TEST(DeviceResident, TheStepReadsBackBeforeTheUpdate) {
  TransferCounter ops(kernels::cpu_ops());
  model::Transformer m(micro_config(), ops);
  m.init_weights(test_seed());
  m.set_quant_state({model::QuantPhase::Hard, 0.0f});
  AdamW adam(m.num_params(), {}, ranges_of(m), ops);
  RandomSource src(m.config().vocab_size, test_seed(2));
  for (int s = 0; s < 2; ++s) {
    ops.reset();
    m.request_weight_stats();
    const float loss = accumulate_gradients(m, src, 2, 8, 2, 7);
    EXPECT_TRUE(std::isfinite(loss));
    EXPECT_EQ(ops.downloads, 2) << "the losses and the code counts, in take_losses";
    const model::WeightStats early = m.weight_stats();
    EXPECT_EQ(ops.downloads, 2) << "weight_stats used the counts take_losses read";
    const model::WeightStats fresh = m.weight_stats();  // nothing counted now: recomputed from the weights
    EXPECT_EQ(early.neg, fresh.neg);
    EXPECT_EQ(early.zero, fresh.zero);
    EXPECT_EQ(early.pos, fresh.pos);
    EXPECT_NEAR(early.neg + early.zero + early.pos, 1.0, 1e-12);
    adam.clip_and_step(m.params().data(), m.grads().data(), 1e-3f, 1.0);
    EXPECT_GT(adam.read_grad_norm(), 0.0);
    EXPECT_TRUE(ops.updated);
    EXPECT_EQ(ops.downloads_after_update, 0) << "a read-back waited for the update";
  }
}

// Before the optimizer moved behind Ops, the trainer scaled the gradients on the host
// (clip_grad_norm) and then ran AdamW; clip_and_step reads them times the clip factor instead. The
// result must be bitwise the same, with clipping active and without.
TEST(DeviceResident, BackendClipAndStepIsBitwiseHostClipThenStep) {
  for (double max_norm : {0.05, 0.0, 1e9}) {
    SCOPED_TRACE(max_norm);
    model::Transformer m(micro_config());
    m.init_weights(test_seed());
    RandomSource src(m.config().vocab_size, test_seed(2));
    accumulate_gradients(m, src, 2, 8, 2, 3);
    const std::vector<float> p0 = m.download_params();
    const std::vector<float> g0(m.grads().begin(), m.grads().end());

    AdamW fused(m.num_params(), {}, ranges_of(m));
    std::vector<float> p_fused = p0;
    fused.clip_and_step(p_fused.data(), g0.data(), 1e-2f, max_norm);

    AdamW host(m.num_params(), {}, ranges_of(m));
    std::vector<float> p_host = p0, g_host = g0;
    const double norm = clip_grad_norm(g_host, max_norm);
    host.step(p_host, g_host, 1e-2f);

    EXPECT_EQ(fused.read_grad_norm(), norm);
    if (max_norm == 0.05) {
      ASSERT_GT(norm, max_norm) << "the case meant to clip does not";
    }
    EXPECT_EQ(std::memcmp(p_fused.data(), p_host.data(), p0.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(fused.exp_avg().data(), host.exp_avg().data(), p0.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(fused.exp_avg_sq().data(), host.exp_avg_sq().data(), p0.size() * sizeof(float)), 0);
    EXPECT_NE(p_fused, p0);
  }
}

}  // namespace
