// Whole-model gradients against central finite differences in f64 (reference kernels):
// (a) full precision, (b) with quantizers in the forward (STE), against the surrogate network whose
// quantizers return input + the offset recorded at the base point (SteSurrogateOps, a decorator of the
// reference kernels).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "model_test_util.h"
#include "ste_surrogate_ops.h"
#include "test_seed.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/network.h"

namespace onebit::model {
namespace {

using testing::Batch;
using testing::random_batch;
using testing::small_config;
using testing::SteSurrogateOps;

struct Case {
  std::string name;
  ModelConfig cfg;
  QuantPhase phase;
  float k = 0.0f;
  bool training = true;
};

// Compares the analytic gradient of every parameter (or a random subset for bigger models) with the
// central difference of `loss` over the same network (surrogate when quantized).
void check_gradients(const Case& c, uint64_t salt) {
  // Fresh weights and batch on every run; the seed is printed if the check fails (test_seed.h).
  const uint64_t seed = onebit::test::test_seed(salt);
  SCOPED_TRACE(c.name);
  SteSurrogateOps<double> ops(kernels::reference_ops<double>());
  Network<double> net(c.cfg, ops);
  net.init_weights(seed);
  // Larger-than-init weights make every path (norm gains, attention scores) matter numerically.
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> nd(0.0, 0.3);
  for (const auto& p : net.layout().info) {
    double* w = net.params() + p.offset;
    for (size_t i = 0; i < p.numel; ++i) w[i] = p.shape.size() == 1 ? 1.0 + nd(gen) : nd(gen);
  }
  net.set_quant_state({c.phase, c.k});
  net.set_training(c.training);
  net.set_dropout_seed(seed * 7 + 1);
  const Batch b = random_batch(c.cfg, 2, 5, seed + 3);

  const bool quantized = c.phase != QuantPhase::FullPrecision;
  net.zero_grad();
  const double loss = net.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
  net.backward(1.0);
  std::vector<double> analytic(net.grads(), net.grads() + net.num_params());

  if (quantized) {
    ops.record([&] { net.forward(b.tokens.data(), b.targets.data(), b.B, b.T); });
    ASSERT_GT(ops.recorded_weights(), 0u);
    if (c.phase == QuantPhase::Hard) {
      ASSERT_GT(ops.recorded_activations(), 0u);
    }
    ops.set_surrogate_mode(true);
    const double loss_s = net.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    ASSERT_NEAR(loss_s, loss, 1e-12) << "the surrogate must equal the quantized network at the base point";
  }
  const double eps = 1e-6;
  int checked = 0, nonzero = 0;
  for (const auto& p : net.layout().info) {
    for (size_t i = 0; i < p.numel; ++i) {
      double& x = net.params()[p.offset + i];
      const double x0 = x;
      x = x0 + eps;
      const double lp = net.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
      x = x0 - eps;
      const double lm = net.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
      x = x0;
      const double fd = (lp - lm) / (2 * eps);
      const double a = analytic[p.offset + i];
      ASSERT_NEAR(a, fd, 1e-6 + 1e-5 * std::abs(fd)) << p.name << "[" << i << "]";
      ++checked;
      nonzero += std::abs(fd) > 1e-8;
    }
  }
  EXPECT_GT(nonzero, checked / 2) << "most parameters must influence the loss";
}

TEST(ModelGrad, FullPrecisionSwiGLU) { check_gradients({"swiglu", small_config(), QuantPhase::FullPrecision}, 1); }

TEST(ModelGrad, FullPrecisionReLU2TiedNoQkNormNoSubLn) {
  ModelConfig c = small_config();
  c.hidden_act = HiddenAct::ReLU2;
  c.tie_word_embeddings = true;
  c.qk_norm = false;
  c.sub_ln = false;
  c.num_key_value_heads = 2;
  check_gradients({"relu2-tied", c, QuantPhase::FullPrecision}, 2);
}

TEST(ModelGrad, FullPrecisionGELUDropout) {
  ModelConfig c = small_config();
  c.hidden_act = HiddenAct::GELU;
  c.dropout = 0.25f;
  c.num_hidden_layers = 3;
  check_gradients({"gelu-dropout", c, QuantPhase::FullPrecision}, 3);
}

TEST(ModelGrad, HardQuantSTETernary) { check_gradients({"hard-ternary", small_config(), QuantPhase::Hard}, 4); }

TEST(ModelGrad, HardQuantSTEMixedPrecisionTied) {
  ModelConfig c = small_config();
  c.tie_word_embeddings = true;
  c.quantization.mlp = Precision::Binary;
  c.quantization.lm_head = Precision::Int8;
  c.quantization.overrides["model.layers.1.self_attn.k_proj"] = Precision::BF16;
  c.quantization.overrides["model.layers.0.mlp.down_proj"] = Precision::F32;
  c.quantization.embedding = Precision::BF16;
  check_gradients({"hard-mixed", c, QuantPhase::Hard}, 5);
}

TEST(ModelGrad, SoftPhaseSTE) {
  ModelConfig c = small_config();
  c.quantization.mlp = Precision::Binary;
  c.quantization.embedding = Precision::Ternary;  // a quantized lookup table, against the sandwich default
  check_gradients({"soft", c, QuantPhase::Soft, 3.0f}, 6);
}

// The surrogate keys activation offsets by buffer; a checkpointed forward reuses its slots, which would
// make the offsets ambiguous, so recording one must fail loudly rather than check the wrong function.
TEST(ModelGrad, SurrogateRejectsReusedQuantizerBuffers) {
  ModelConfig c = small_config();
  c.num_hidden_layers = 4;
  SteSurrogateOps<double> ops(kernels::reference_ops<double>());
  Network<double> net(c, ops);
  net.init_weights(7);
  net.set_quant_state({QuantPhase::Hard, 0});
  net.set_checkpoint_segments(2);
  const Batch b = random_batch(c, 1, 4, 8);
  EXPECT_THROW(ops.record([&] { net.forward(b.tokens.data(), b.targets.data(), b.B, b.T); }), std::logic_error);
}

}  // namespace
}  // namespace onebit::model
