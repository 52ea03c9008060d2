// The model on the CUDA backend (bf16 activations, f32 master weights) against the same model on the
// fast CPU backend (f32 throughout), with the same weights and batch, in all three quantization
// phases; and the GPU's own invariants: deterministic gradients, checkpointing that changes nothing,
// the optimizer on device memory. Tolerances (bf16 activations carry 8 significant bits, and in the
// Hard phase an int8 activation code may flip where the f32 and bf16 values straddle a rounding
// boundary): the loss within 2% (+0.02), the logits within 3% relative Frobenius error (5% in the
// Hard phase, where such flips move whole quantization steps), and every
// parameter gradient with cosine similarity >= 0.99 to the CPU's and a norm within 5%. A wiring
// mistake (a transposed operand, a missing norm, a wrong scale) fails these by far.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "onebit/kernels/backend.h"
#include "onebit/kernels/cuda/cuda_ops.h"
#include "onebit/model/network.h"
#include "onebit/model/transformer.h"
#include "onebit/train/adamw.h"

namespace onebit {
namespace {

using kernels::cuda::testing::ScopedEnv;
using kernels::cuda::testing::test_seed;

model::ModelConfig test_config(int hidden, int heads, int kv) {
  model::ModelConfig c;
  c.vocab_size = 301;
  c.hidden_size = hidden;
  c.num_hidden_layers = 2;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv;
  c.intermediate_size = 2 * hidden + 8;
  c.max_position_embeddings = 128;
  c.validate("test");
  return c;
}

struct Batch {
  std::vector<int32_t> tokens, targets;
};
Batch random_batch(int B, int T, int V, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_int_distribution<int> d(0, V - 1);
  Batch b;
  for (int i = 0; i < B * T; ++i) b.tokens.push_back(d(g)), b.targets.push_back(d(g));
  b.targets[3] = -1;  // an ignored position
  return b;
}

// One training pass of `net` (its phase and segments set by the caller) on a batch of 2 rows of T tokens: the loss,
// every gradient and the logits, and how many products the backend ran on the int8 codes or fell back from them.
struct Pass {
  double loss;
  std::vector<float> grads, logits;
  int64_t int8, fallback;
};
Pass train_pass(kernels::cuda::CudaOps& ops, model::Network<float, kernels::bf16>& net, const Batch& b, int T) {
  net.zero_grad();
  Pass r;
  r.loss = net.forward(b.tokens.data(), b.targets.data(), 2, T);
  net.backward(1.0f);
  r.grads.resize(net.num_params());
  ops.download(r.grads.data(), net.grads(), r.grads.size());
  r.logits.resize((size_t)2 * T * net.config().vocab_size);
  net.logits(b.tokens.data(), 2, T, r.logits.data(), false);
  r.int8 = ops.int8_products(), r.fallback = ops.int8_fallbacks();
  return r;
}

double cosine(const float* a, const float* b, size_t n, double* norm_ratio) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
  *norm_ratio = aa > 0 ? std::sqrt(bb / aa) : 1.0;
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
}

// ||got - want|| / ||want|| (Frobenius).
double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i)
    num += (got[i] - want[i]) * (double)(got[i] - want[i]), den += (double)want[i] * want[i];
  return std::sqrt(num / den);
}

void compare_with_cpu(const model::ModelConfig& cfg, model::QuantState q, int B, int T) {
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s << " hd " << cfg.head_dim() << " phase " << (int)q.phase
                                    << " dropout " << cfg.dropout);
  model::Transformer cpu(cfg, kernels::cpu_ops()), gpu(cfg, kernels::cuda_ops());
  cpu.init_weights(s);
  gpu.upload_params(cpu.download_params());
  const Batch b = random_batch(B, T, cfg.vocab_size, s + 1);
  for (auto* m : {&cpu, &gpu}) {
    m->set_quant_state(q);
    m->set_dropout_seed(s + 2);  // the same masks on both (embedding, attention, residuals)
    m->zero_grad();
  }
  const float lc = cpu.forward(b.tokens.data(), b.targets.data(), B, T);
  const float lg = gpu.forward(b.tokens.data(), b.targets.data(), B, T);
  EXPECT_NEAR(lg, lc, 0.02 * std::abs(lc) + 0.02) << "loss";
  cpu.backward(1.0f);
  gpu.backward(1.0f);
  const std::vector<float> gc(cpu.grads().begin(), cpu.grads().end());
  std::vector<float> gg(gpu.num_params());
  gpu.ops().download(gg.data(), gpu.grads().data(), gg.size());
  for (const auto& p : cpu.params_info()) {
    double ratio = 0;
    const double c = cosine(gc.data() + p.offset, gg.data() + p.offset, p.numel, &ratio);
    EXPECT_GE(c, 0.99) << p.name;
    EXPECT_NEAR(ratio, 1.0, 0.05) << p.name;
  }
  std::vector<float> oc((size_t)B * T * cfg.vocab_size), og(oc.size());
  cpu.logits(b.tokens.data(), B, T, oc.data(), false);
  gpu.logits(b.tokens.data(), B, T, og.data(), false);
  EXPECT_LE(relative_error(og, oc), q.phase == model::QuantPhase::Hard ? 0.05 : 0.03) << "logits";
}

class CudaModel : public ::testing::TestWithParam<model::QuantPhase> {};
// Named by phase in the test names (ctest -R Hard), not googletest's bytes of the enum.
INSTANTIATE_TEST_SUITE_P(Phases, CudaModel,
                         ::testing::Values(model::QuantPhase::FullPrecision, model::QuantPhase::Soft,
                                           model::QuantPhase::Hard),
                         [](const ::testing::TestParamInfo<model::QuantPhase>& info) -> std::string {
                           switch (info.param) {
                             case model::QuantPhase::FullPrecision: return "FullPrecision";
                             case model::QuantPhase::Soft: return "Soft";
                             case model::QuantPhase::Hard: return "Hard";
                           }
                           return "Unknown";
                         });

TEST_P(CudaModel, MatchesTheCpuBackendFlashHeadDim) {
  ONEBIT_REQUIRE_GPU();
  compare_with_cpu(test_config(128, 2, 1), {GetParam(), 8.0f}, 2, 80);  // hd 64, GQA, T not a tile multiple
}

TEST_P(CudaModel, MatchesTheCpuBackendGenericHeadDim) {
  ONEBIT_REQUIRE_GPU();
  compare_with_cpu(test_config(96, 2, 2), {GetParam(), 8.0f}, 3, 37);  // hd 48, as the tiny preset
}

// nanoGPT's dropout sites (embedding output, attention probabilities, both residual branches) draw the
// shared counter-based masks, so the GPU trains the CPU's model with dropout too.
TEST_P(CudaModel, MatchesTheCpuBackendWithDropout) {
  ONEBIT_REQUIRE_GPU();
  auto flash = test_config(128, 2, 1), generic = test_config(96, 2, 2);
  flash.dropout = generic.dropout = 0.2f;
  compare_with_cpu(flash, {GetParam(), 8.0f}, 2, 80);
  compare_with_cpu(generic, {GetParam(), 8.0f}, 3, 37);
}

// The fused Q/K/V and gate/up backward (the CUDA default) against the unfused one on the same GPU: the
// loss is the same bits (the forward is shared) and every gradient agrees to bf16 rounding (the fused
// dx is one product rounded once; the unfused adds two more products into the rounded bf16 sum).
TEST_P(CudaModel, FusedProjectionsMatchTheUnfusedBackward) {
  ONEBIT_REQUIRE_GPU();
  auto& ops = kernels::cuda_ops();
  for (const bool sub_ln : {true, false}) {
    auto cfg = test_config(128, 2, 1);  // hd 64, GQA: kvd 64, ff 264
    cfg.sub_ln = sub_ln;
    cfg.dropout = sub_ln ? 0.0f : 0.1f;
    const uint64_t s = test_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << s << " sub_ln " << sub_ln << " phase " << (int)GetParam());
    const Batch b = random_batch(2, 80, cfg.vocab_size, s + 1);
    double loss[2];
    std::vector<float> g[2];
    for (int fused = 0; fused < 2; ++fused) {
      model::Network<float, kernels::bf16> net(cfg, ops);
      if (fused == 0 && std::getenv("ONEBIT_CUDA_FUSED_PROJECTIONS") == nullptr) {
        EXPECT_TRUE(net.fused_projections()) << "the CUDA backend fuses by default";
      }
      net.set_fused_projections(fused == 1);
      net.init_weights(s);
      net.set_quant_state({GetParam(), 8.0f});
      net.set_dropout_seed(s + 2);
      net.zero_grad();
      loss[fused] = net.forward(b.tokens.data(), b.targets.data(), 2, 80);
      net.backward(1.0f);
      g[fused].resize(net.num_params());
      ops.download(g[fused].data(), net.grads(), g[fused].size());
      if (fused == 1) {
        EXPECT_EQ(loss[1], loss[0]) << "loss";
        for (const auto& p : net.layout().info) {
          double ratio = 0;
          const double c = cosine(g[0].data() + p.offset, g[1].data() + p.offset, p.numel, &ratio);
          EXPECT_GE(c, 0.999) << p.name;
          EXPECT_NEAR(ratio, 1.0, 0.01) << p.name;
        }
      }
    }
  }
}

// The Hard-phase forward on int8 tensor cores (CudaOps::ternary_linear_forward) against the bf16 products
// of the same effective values on the same GPU: every ternary product of a model whose widths are
// multiples of 16 runs on the codes (none falls back), and the loss, logits and gradients agree as the
// GPU agrees with the CPU (the products differ at rounding level; an activation code downstream may flip).
// Also bitwise repeatable and unchanged by checkpointed segments (the recompute writes the codes again).
TEST(CudaModelInvariants, Int8ForwardMatchesTheBf16Forward) {
  ONEBIT_REQUIRE_GPU();
  if (!kernels::cuda::int8_gemm_available()) GTEST_SKIP() << "no sm_90a code or not a compute capability 9.0 device";
  auto cfg = test_config(128, 2, 1);
  cfg.intermediate_size = 256;
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  const Batch b = random_batch(2, 80, cfg.vocab_size, s + 1);
  struct Run : Pass {
    std::vector<float> logits_after;
    std::vector<model::ParamInfo> info;
  };
  auto run = [&](bool int8, int segments) {
    const ScopedEnv env({{"ONEBIT_CUDA_INT8_FORWARD", std::string(int8 ? "1" : "0")}});
    kernels::cuda::CudaOps ops;  // reads the variable when it is made
    model::Network<float, kernels::bf16> net(cfg, ops);
    net.init_weights(s);
    net.set_quant_state({model::QuantPhase::Hard, 0});
    net.set_checkpoint_segments(segments);
    Run r;
    static_cast<Pass&>(r) = train_pass(ops, net, b, 80);
    r.info = net.layout().info;
    // A weight update that flips half the codes (every other master weight negated): the next pass must
    // multiply the new codes, not the ones converted for the passes before it.
    std::vector<float> p(net.num_params());
    ops.download(p.data(), net.params(), p.size());
    for (size_t i = 0; i < p.size(); i += 2) p[i] = -p[i];
    ops.upload(net.params(), p.data(), p.size());
    r.logits_after.resize(r.logits.size());
    net.logits(b.tokens.data(), 2, 80, r.logits_after.data(), false);
    return r;
  };
  const Run bf = run(false, 0), i8 = run(true, 0), again = run(true, 0), seg = run(true, 2);
  EXPECT_EQ(bf.int8, 0);
  // 7 ternary linears per layer, 2 layers; the training forward and the logits pass. Gate and up (256 wide
  // each) run as one product unless ONEBIT_CUDA_INT8_GROUPS=0; Q/K/V cannot (Q's 128 columns end inside a tile).
  const char* groups = std::getenv("ONEBIT_CUDA_INT8_GROUPS");
  EXPECT_EQ(i8.int8, 2 * (groups && std::string(groups) == "0" ? 7 : 6) * 2);
  EXPECT_EQ(i8.fallback, 0);
  EXPECT_NEAR(i8.loss, bf.loss, 0.02 * std::abs(bf.loss) + 0.02);
  EXPECT_LE(relative_error(i8.logits, bf.logits), 0.05) << "logits";
  EXPECT_LE(relative_error(i8.logits_after, bf.logits_after), 0.05) << "logits after the weights changed";
  EXPECT_GE(relative_error(bf.logits, bf.logits_after), 0.2)
      << "the weight change must move the logits for the check above to mean anything";
  for (const auto& p : bf.info) {
    double ratio = 0;
    const double c = cosine(bf.grads.data() + p.offset, i8.grads.data() + p.offset, p.numel, &ratio);
    EXPECT_GE(c, 0.99) << p.name;
    EXPECT_NEAR(ratio, 1.0, 0.05) << p.name;
  }
  EXPECT_EQ(again.loss, i8.loss);
  EXPECT_TRUE(again.grads == i8.grads) << "two identical int8 steps differ";
  EXPECT_TRUE(seg.grads == i8.grads) << "checkpointed segments change the int8 step's gradients";
  EXPECT_GT(seg.int8, i8.int8) << "the recomputed forwards run on the codes too";
  EXPECT_EQ(seg.fallback, 0);
}

// The Hard phase's projection groups as one int8 product each (CudaOps::ternary_linear_forward_group) against
// the members' own products (ONEBIT_CUDA_INT8_GROUPS=0) on the same GPU: the loss, the gradients and the logits
// are the same bits, and per layer Q/K/V and gate/up each ran as one product (4 int8 products, not 7). Shapes: an
// MHA and a GQA group (1024 + 256 + 256 style), and a layer whose codes' conversion run (16 Mi codes from layer
// 0's Q) ends after its Q, so its group converts its codes again from Q.
TEST(CudaModelInvariants, Int8GroupsMatchTheMembersProducts) {
  ONEBIT_REQUIRE_GPU();
  if (!kernels::cuda::int8_gemm_available()) GTEST_SKIP() << "no sm_90a code or not a compute capability 9.0 device";
  struct Shape {
    int hidden, heads, kv, ff;
  };
  for (const Shape& sh : {Shape{256, 4, 4, 512}, Shape{512, 8, 4, 768}, Shape{1024, 16, 16, 3584}}) {
    auto cfg = test_config(sh.hidden, sh.heads, sh.kv);
    cfg.intermediate_size = sh.ff;
    const uint64_t s = test_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << s << " hidden " << sh.hidden << " kv heads " << sh.kv);
    const Batch b = random_batch(2, 64, cfg.vocab_size, s + 1);
    auto run = [&](bool groups) {
      const ScopedEnv env({{"ONEBIT_CUDA_INT8_FORWARD", "1"}, {"ONEBIT_CUDA_INT8_GROUPS", groups ? "1" : "0"}});
      kernels::cuda::CudaOps ops;  // reads the variables when it is made
      model::Network<float, kernels::bf16> net(cfg, ops);
      net.init_weights(s);
      net.set_quant_state({model::QuantPhase::Hard, 0});
      return train_pass(ops, net, b, 64);
    };
    const Pass apart = run(false), grouped = run(true);
    const int L = cfg.num_hidden_layers;
    EXPECT_EQ(apart.int8, 2 * L * 7);  // the training forward and the logits pass
    EXPECT_EQ(grouped.int8, 2 * L * 4);
    EXPECT_EQ(apart.fallback, 0);
    EXPECT_EQ(grouped.fallback, 0);
    EXPECT_EQ(grouped.loss, apart.loss);
    EXPECT_TRUE(grouped.grads == apart.grads) << "gradients";
    EXPECT_TRUE(grouped.logits == apart.logits) << "logits";
  }
}

TEST(CudaModelInvariants, DeterministicAndCheckpointingChangesNothing) {
  ONEBIT_REQUIRE_GPU();
  auto cfg = test_config(128, 2, 2);
  cfg.dropout = 0.1f;  // the checkpointed recompute must draw the forward's masks
  const Batch b = random_batch(2, 64, cfg.vocab_size, test_seed());
  auto grads = [&](int segments) {
    model::Transformer m(cfg, kernels::cuda_ops());
    m.init_weights(5);
    m.set_quant_state({model::QuantPhase::Hard, 0});
    m.set_checkpoint_segments(segments);
    m.set_dropout_seed(11);
    m.zero_grad();
    m.forward(b.tokens.data(), b.targets.data(), 2, 64);
    m.backward(1.0f);
    std::vector<float> g(m.num_params());
    m.ops().download(g.data(), m.grads().data(), g.size());
    return g;
  };
  const auto a = grads(0);
  EXPECT_TRUE(a == grads(0)) << "two identical steps differ";
  EXPECT_TRUE(a == grads(2)) << "checkpointed segments change the gradients";
}

TEST(CudaModelInvariants, AdamWStepsOnDeviceMemoryAsOnTheCpu) {
  ONEBIT_REQUIRE_GPU();
  const auto cfg = test_config(128, 2, 2);
  const Batch b = random_batch(2, 32, cfg.vocab_size, test_seed());
  std::vector<float> after[2];
  int i = 0;
  for (kernels::Device d : {kernels::Device::Cpu, kernels::Device::Cuda}) {
    auto m = model::make_transformer(cfg, d);
    m->init_weights(9);
    m->set_quant_state({model::QuantPhase::FullPrecision, 0});
    train::AdamW opt(m->num_params(), {}, {{0, m->num_params(), true}}, m->ops());
    for (int step = 0; step < 3; ++step) {
      m->zero_grad();
      m->forward(b.tokens.data(), b.targets.data(), 2, 32);
      m->backward(1.0f);
      opt.clip_and_step(m->params().data(), m->grads().data(), 1e-3f, 1.0);
      EXPECT_GT(opt.read_grad_norm(), 0.0);
    }
    after[i++] = m->download_params();
  }
  // Adam normalises each update to at most about lr, so 3 steps differ by at most 2 x 3 lr even where
  // bf16 noise flips a tiny gradient's sign; almost every parameter agrees far more closely.
  size_t close = 0;
  for (size_t j = 0; j < after[0].size(); ++j) {
    ASSERT_NEAR(after[1][j], after[0][j], 6e-3 + 1e-6) << "param " << j;
    close += std::abs(after[1][j] - after[0][j]) <= 3e-4;
  }
  EXPECT_GE(close, after[0].size() * 95 / 100) << "parameters within 0.3 lr of the CPU's";
}

}  // namespace
}  // namespace onebit
