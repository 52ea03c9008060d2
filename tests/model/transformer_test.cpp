// The public f32 Transformer on the fast CPU kernels: agrees with the f64 reference network,
// checkpointed segments give bitwise identical gradients, edge cases behave.
#include "onebit/model/transformer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "model_test_util.h"
#include "quant_code_replay.h"
#include "test_seed.h"
#include "onebit/core/rng.h"
#include "onebit/kernels/cpu/sgemm_avx512.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/network.h"

namespace onebit::model {
namespace {

using testing::Batch;
using testing::random_batch;

ModelConfig medium_config() {
  ModelConfig c;
  c.vocab_size = 300;
  c.hidden_size = 64;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 96;
  c.max_position_embeddings = 128;
  c.qk_norm = true;
  c.sub_ln = true;
  c.dropout = 0.1f;
  return c;
}

// A ternary weight within f32 rounding of a code boundary (|W/g| = 0.5) can round differently in f32
// and f64 and move by g, which no tolerance on f32 error covers. Push such weights 1e-3 g away from the
// boundary (g moves by far less than that margin), so the comparison measures the kernels, not the tie.
void keep_ternary_weights_off_ties(float* params, const std::vector<ParamInfo>& infos) {
  for (const auto& info : infos) {
    if (info.precision != Precision::Ternary) continue;
    float* w = params + info.offset;
    double g = 0;
    for (size_t i = 0; i < info.numel; ++i) g += std::abs(w[i]);
    g = g / static_cast<double>(info.numel) + 1e-5;
    for (size_t i = 0; i < info.numel; ++i) {
      const double x = std::abs(w[i]) / g;
      if (std::abs(x - 0.5) < 1e-3) w[i] = static_cast<float>(std::copysign((x < 0.5 ? 0.499 : 0.501) * g, w[i]));
    }
  }
}

// The fast f32 model (Transformer's Network<float> on the fast CPU backend) vs the f64 reference
// network on the same weights and batch. In the Hard phase the int8 activation codes are compared
// exactly (quant_code_replay.h): equal except one-step flips on f64 rounding ties, after which the
// reference goes on with the f32 model's code, so every phase is held to f32 accuracy.
void expect_matches_reference(const ModelConfig& cfg, QuantState qs) {
  const uint64_t seed = onebit::test::test_seed();
  testing::CodeRecorder fast_ops(kernels::cpu_ops());
  // A flip counts as a tie when the f64 value is within 1e-3 of k + 0.5: f32 error on values up to
  // 127 (over 80 seeds x both GEMM paths the flips sat within 4e-5 of the tie).
  testing::CodeReplayer ref_ops(kernels::reference_ops<double>(), fast_ops, 1e-3);
  Network<float> fast(cfg, fast_ops);
  fast.init_weights(seed);
  if (qs.phase == QuantPhase::Hard) keep_ternary_weights_off_ties(fast.params(), fast.layout().info);
  Network<double> ref(cfg, ref_ops);
  for (size_t i = 0; i < fast.num_params(); ++i) ref.params()[i] = fast.params()[i];
  fast.set_quant_state(qs);
  ref.set_quant_state(qs);
  fast.set_dropout_seed(5);
  ref.set_dropout_seed(5);
  const Batch b = random_batch(cfg, 3, 70, seed + 1);
  fast.zero_grad();
  ref.zero_grad();
  const double lf = fast.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
  const double lr = ref.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
  const bool hard = qs.phase == QuantPhase::Hard;
  EXPECT_EQ(ref_ops.wrong, 0) << "int8 activation codes that differ off a rounding tie, of " << ref_ops.compared;
  EXPECT_EQ(ref_ops.calls_without_record, 0) << "the two networks quantized different activations";
  EXPECT_TRUE(fast_ops.codes.empty());
  if (hard) {
    EXPECT_GT(ref_ops.compared, 200000) << "the Hard phase must quantize every linear's input";
    // Ties are rare (at most 10 of 241920 codes measured): a systematic one-step error (rounding mode,
    // scale) would show as hundreds of flips or as codes off a tie.
    EXPECT_LE(ref_ops.tie_flips, 50) << "of " << ref_ops.compared << " codes";
  } else {
    EXPECT_EQ(ref_ops.compared, 0);
  }
  // Measured: loss within 2e-8 relative, every tensor's gradient within 4e-6 of its norm (all phases,
  // 80 seeds, both GEMM paths); the bounds leave a 30-50x margin for other inputs and machines.
  EXPECT_NEAR(lf, lr, 1e-6 * std::abs(lr));
  fast.backward(0.5f);
  ref.backward(0.5);
  // Compare per tensor, relative to the tensor's gradient norm (f32 accumulation error).
  for (const auto& info : fast.layout().info) {
    double num = 0, den = 0;
    for (size_t i = 0; i < info.numel; ++i) {
      const double a = fast.grads()[info.offset + i], r = ref.grads()[info.offset + i];
      num += (a - r) * (a - r);
      den += r * r;
    }
    EXPECT_LE(std::sqrt(num), 1e-4 * std::sqrt(den) + 1e-9) << info.name;
  }
}

TEST(Transformer, MatchesReferenceFullPrecision) {
  expect_matches_reference(medium_config(), {QuantPhase::FullPrecision, 0});
}

TEST(Transformer, MatchesReferenceSoft) {
  ModelConfig c = medium_config();
  c.hidden_act = HiddenAct::GELU;
  expect_matches_reference(c, {QuantPhase::Soft, 4.0f});
}

TEST(Transformer, MatchesReferenceHard) {
  ModelConfig c = medium_config();
  c.hidden_act = HiddenAct::ReLU2;
  c.tie_word_embeddings = true;
  expect_matches_reference(c, {QuantPhase::Hard, 0});
}

TEST(Transformer, CheckpointSegmentsGiveBitwiseIdenticalGradients) {
  ModelConfig c = medium_config();
  c.num_hidden_layers = 5;
  const uint64_t seed = onebit::test::test_seed();
  const Batch b = random_batch(c, 2, 40, seed);
  std::vector<float> base_grads;
  float base_loss = 0;
  for (int segs : {0, 1, 2, 3, 5}) {
    Transformer m(c);
    m.init_weights(seed + 1);
    m.set_quant_state({QuantPhase::Hard, 0});
    m.set_dropout_seed(seed + 2);
    m.set_checkpoint_segments(segs);
    m.zero_grad();
    // Two accumulated micro-batches exercise accumulation too.
    float loss = m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    m.backward(0.5f);
    loss += m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    m.backward(0.5f);
    std::vector<float> g(m.grads().begin(), m.grads().end());
    if (segs == 0) {
      base_grads = g;
      base_loss = loss;
      continue;
    }
    EXPECT_EQ(std::memcmp(&loss, &base_loss, sizeof(float)), 0) << "segments " << segs;
    ASSERT_EQ(g.size(), base_grads.size());
    EXPECT_EQ(std::memcmp(g.data(), base_grads.data(), g.size() * sizeof(float)), 0) << "segments " << segs;
  }
}

// The grads-ready hook (what the data-parallel trainer starts gradient all-reduces from): the ranges
// tile the arena once, from its end towards the embeddings as backward goes, and each range's
// gradients are already final when it is reported (a snapshot then equals the end result bitwise),
// with tied and untied heads and with recomputed segments.
TEST(Transformer, GradsReadyHookReportsEachRangeOnceWhenItIsFinal) {
  const uint64_t seed = onebit::test::test_seed();
  for (bool tied : {true, false}) {
    for (int segs : {0, 2}) {
      SCOPED_TRACE(::testing::Message() << "tied " << tied << ", segments " << segs);
      ModelConfig c = medium_config();
      c.tie_word_embeddings = tied;
      const Batch b = random_batch(c, 2, 24, seed);
      Transformer m(c);
      m.init_weights(seed + 1);
      m.set_quant_state({QuantPhase::Hard, 0});
      m.set_dropout_seed(seed + 2);
      m.set_checkpoint_segments(segs);
      m.zero_grad();
      // A first micro-batch without the hook: accumulation, as the trainer's last micro-batch sees it.
      m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
      m.backward(0.5f);
      struct Range {
        size_t offset, count;
        std::vector<float> at_report;
      };
      std::vector<Range> ranges;
      m.set_grads_ready_hook([&](size_t offset, size_t count) {
        const float* g = m.grads().data() + offset;
        ranges.push_back({offset, count, std::vector<float>(g, g + count)});
      });
      m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
      m.backward(0.5f);
      m.set_grads_ready_hook({});
      ASSERT_EQ(ranges.size(), static_cast<size_t>(c.num_hidden_layers) + 2);
      EXPECT_EQ(ranges.front().offset, m.param("model.norm.weight").offset);
      size_t end = m.num_params();
      for (const Range& r : ranges) {
        EXPECT_EQ(r.offset + r.count, end) << "ranges must tile the arena from its end";
        end = r.offset;
        EXPECT_EQ(std::memcmp(r.at_report.data(), m.grads().data() + r.offset, r.count * sizeof(float)), 0)
            << "range at " << r.offset << " changed after it was reported";
      }
      EXPECT_EQ(end, 0u);
      // Each layer's tensors lie in its own range.
      for (int l = 0; l < c.num_hidden_layers; ++l) {
        const Range& r = ranges[1 + static_cast<size_t>(c.num_hidden_layers - 1 - l)];
        const ParamInfo& q = m.param(cat("model.layers.", l, ".self_attn.q_proj.weight"));
        EXPECT_TRUE(q.offset >= r.offset && q.offset + q.numel <= r.offset + r.count) << "layer " << l;
      }
      // Without a hook nothing is reported.
      const size_t calls = ranges.size();
      m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
      m.backward(0.5f);
      EXPECT_EQ(ranges.size(), calls);
    }
  }
}

TEST(Transformer, CheckpointingReducesActivationMemory) {
  ModelConfig c = medium_config();
  c.num_hidden_layers = 8;
  const Batch b = random_batch(c, 2, 64, 1);
  size_t prev = 0;
  for (int segs : {0, 2, 4}) {  // 8 slots, then 4 + boundaries, then 2 + boundaries
    Transformer m(c);
    m.init_weights(1);
    m.set_checkpoint_segments(segs);
    m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    m.backward();
    if (prev) {
      EXPECT_LT(m.peak_activation_bytes(), prev) << segs;
    }
    prev = m.peak_activation_bytes();
  }
}

TEST(Transformer, AllTargetsIgnoredGivesZeroLossAndZeroGrads) {
  ModelConfig c = medium_config();
  Transformer m(c);
  m.init_weights(1);
  Batch b = random_batch(c, 2, 8, 2);
  std::fill(b.targets.begin(), b.targets.end(), -1);
  m.zero_grad();
  const float loss = m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
  EXPECT_EQ(loss, 0.0f);
  m.backward();
  for (float g : m.grads()) ASSERT_TRUE(std::isfinite(g));
  for (float g : m.grads()) ASSERT_EQ(g, 0.0f);
}

TEST(Transformer, LogitsMatchForwardLoss) {
  ModelConfig c = medium_config();
  c.dropout = 0.0f;
  Transformer m(c);
  m.init_weights(4);
  const Batch b = random_batch(c, 2, 16, 8);
  m.set_training(false);
  const float loss = m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
  std::vector<float> logits((size_t)b.B * b.T * c.vocab_size);
  m.logits(b.tokens.data(), b.B, b.T, logits.data(), false);
  double sum = 0;
  int count = 0;
  for (int n = 0; n < b.B * b.T; ++n) {
    if (b.targets[n] < 0) continue;
    const float* l = logits.data() + (size_t)n * c.vocab_size;
    double mx = l[0], s = 0;
    for (int v = 0; v < c.vocab_size; ++v) mx = std::max(mx, (double)l[v]);
    for (int v = 0; v < c.vocab_size; ++v) s += std::exp(l[v] - mx);
    sum += mx + std::log(s) - l[b.targets[n]];
    ++count;
  }
  EXPECT_NEAR(loss, sum / count, 1e-4);
  std::vector<float> last((size_t)b.B * c.vocab_size);
  m.logits(b.tokens.data(), b.B, b.T, last.data(), true);
  for (int bb = 0; bb < b.B; ++bb)
    for (int v = 0; v < c.vocab_size; ++v)
      EXPECT_NEAR(last[(size_t)bb * c.vocab_size + v], logits[((size_t)bb * b.T + b.T - 1) * c.vocab_size + v], 1e-5);
}

// Generation grows T one token at a time; the arena grows geometrically and results stay exact.
TEST(Transformer, LogitsWithGrowingSequenceMatchAFreshModel) {
  ModelConfig c = medium_config();
  Transformer grown(c);
  grown.init_weights(6);
  const Batch b = random_batch(c, 1, 40, 3);
  std::vector<float> a(c.vocab_size), f(c.vocab_size);
  for (int T = 1; T <= 40; T += 3) {
    grown.logits(b.tokens.data(), 1, T, a.data(), true);
    Transformer fresh(c);
    fresh.init_weights(6);
    fresh.logits(b.tokens.data(), 1, T, f.data(), true);
    ASSERT_EQ(std::memcmp(a.data(), f.data(), a.size() * sizeof(float)), 0) << "T=" << T;
  }
}

TEST(Transformer, ErrorsNameTheProblem) {
  ModelConfig c = medium_config();
  Transformer m(c);
  m.init_weights(1);
  std::vector<int32_t> tok(4, 0), tgt(4, 1);
  tok[2] = c.vocab_size;
  try {
    m.forward(tok.data(), tgt.data(), 1, 4);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
  }
  std::vector<int32_t> long_tok(c.max_position_embeddings + 1, 0);
  EXPECT_THROW(m.forward(long_tok.data(), long_tok.data(), 1, (int)long_tok.size()), Error);
  EXPECT_THROW(m.backward(), Error);  // no forward on this batch
  EXPECT_THROW(m.param("model.layers.9.mlp.up_proj.weight"), Error);
}

// A sequence's logits do not depend on what else is in the batch: gradient accumulation (train/
// GradAccumulation) and batched generation rely on it. Bitwise with onebit's own GEMM (its summation
// order depends only on K); OpenBLAS's result for a row depends slightly on the row's place in the
// matrix, so there f32-rounding-close, and in the Hard phase an int8 activation code may flip on it.
TEST(Transformer, LogitsAreBatchInvariant) {
  ModelConfig c = medium_config();
  const uint64_t seed = onebit::test::test_seed();
  const bool own_gemm = kernels::cpu::sgemm_avx512_available();
  const int B = 3, T = 37;
  const Batch b = random_batch(c, B, T, seed);
  for (QuantPhase phase : {QuantPhase::FullPrecision, QuantPhase::Soft, QuantPhase::Hard}) {
    SCOPED_TRACE((int)phase);
    Transformer m(c);
    m.init_weights(seed + 1);
    m.set_quant_state({phase, 4.0f});
    std::vector<float> all((size_t)B * T * c.vocab_size), one((size_t)T * c.vocab_size);
    m.logits(b.tokens.data(), B, T, all.data(), false);
    for (int i = 0; i < B; ++i) {
      m.logits(b.tokens.data() + (size_t)i * T, 1, T, one.data(), false);
      const float* in_batch = all.data() + (size_t)i * T * c.vocab_size;
      if (own_gemm) {
        EXPECT_EQ(std::memcmp(one.data(), in_batch, one.size() * sizeof(float)), 0) << "sequence " << i;
        continue;
      }
      double num = 0, den = 0;
      for (size_t k = 0; k < one.size(); ++k) {
        num += (double)(one[k] - in_batch[k]) * (one[k] - in_batch[k]);
        den += (double)in_batch[k] * in_batch[k];
      }
      // Hard: a flipped int8 code moves its row's output by one quantization step (measured <= ~1.5%).
      EXPECT_LE(std::sqrt(num), (phase == QuantPhase::Hard ? 5e-2 : 1e-5) * std::sqrt(den)) << "sequence " << i;
    }
  }
}

// B*T*heads rows beyond int range: a clear error before any allocation or kernel call.
TEST(Transformer, OversizedBatchIsAnError) {
  ModelConfig c = medium_config();
  Transformer m(c);
  m.init_weights(1);
  std::vector<int32_t> tok(16, 0);  // never read: the size check comes first
  try {
    m.forward(tok.data(), tok.data(), 1 << 22, c.max_position_embeddings);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use a smaller batch"), std::string::npos) << e.what();
  }
}

TEST(Transformer, WeightStatsCountTernaryCodes) {
  ModelConfig c = medium_config();
  Transformer m(c);
  m.init_weights(1);
  const WeightStats s = m.weight_stats();
  EXPECT_NEAR(s.neg + s.zero + s.pos, 1.0, 1e-9);
  // Gaussian weights with g = mean|W|: |W| < g/2 for about 31% of them.
  EXPECT_GT(s.zero, 0.25);
  EXPECT_LT(s.zero, 0.38);
  EXPECT_NEAR(s.neg, s.pos, 0.02);
}

// End to end: plain Adam on a copy task (second half of each sequence repeats the first) must learn
// to use attention, in the Hard QAT phase; the loss on the copied half falls far below chance.
TEST(Transformer, LearnsToCopyWithHardQuantization) {
  ModelConfig c = medium_config();
  c.vocab_size = 16;
  c.dropout = 0.0f;
  c.num_hidden_layers = 2;
  Transformer m(c);
  m.init_weights(5);
  m.set_quant_state({QuantPhase::Hard, 0});
  const int B = 16, T = 24, half = T / 2;
  std::vector<float> mom(m.num_params(), 0.0f), var(m.num_params(), 0.0f);
  Rng rng(1);
  std::vector<int32_t> tok(B * T), tgt(B * T);
  float loss = 0;
  for (int step = 1; step <= 300; ++step) {
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < half; ++t) tok[b * T + t] = tok[b * T + half + t] = (int32_t)rng.uniform_int(16);
      for (int t = 0; t < T; ++t) tgt[b * T + t] = t >= half - 1 && t < T - 1 ? tok[b * T + t + 1] : -1;
    }
    m.zero_grad();
    loss = m.forward(tok.data(), tgt.data(), B, T);
    m.backward();
    auto p = m.params();
    auto g = m.grads();
    for (size_t i = 0; i < p.size(); ++i) {
      mom[i] = 0.9f * mom[i] + 0.1f * g[i];
      var[i] = 0.99f * var[i] + 0.01f * g[i] * g[i];
      p[i] -= 3e-3f * (mom[i] / (1 - std::pow(0.9f, step))) / (std::sqrt(var[i] / (1 - std::pow(0.99f, step))) + 1e-8f);
    }
  }
  EXPECT_LT(loss, 0.5f) << "chance is ln(16) = 2.77";
}

}  // namespace
}  // namespace onebit::model
