// One Hard-phase training step's gradients with the bf16x3 backward of the ternary linears
// (Ops::ternary_linear_backward, kernels/cpu/bf16x3_gemm.h) against the same step on the two f32 gemm
// calls: equal to f32 rounding level in every parameter tensor. Runs on any AVX-512 machine with the
// tile instructions emulated (amx_tile_emulator.h), and with the real AMX-BF16 path of cpu_ops() where
// it is usable. The forward is the same integer product in every run, so only the backward differs.
//
// Tolerance: ||g - g_f32|| <= 2e-6 ||g_f32|| per tensor. The rounding-level differences measured up to
// 9e-7 (the norm weights, downstream of every linear); dropping the third bf16 part (relative error up to
// 2^-17 per product) gave 2.2e-6 in the least affected tensor and more elsewhere, a wrong element or
// scale O(1).
#include <gtest/gtest.h>

#include <cstdlib>

#include <cmath>
#include <memory>
#include <vector>

#include "amx_tile_emulator.h"
#include "forwarding_ops.h"
#include "model_test_util.h"
#include "test_seed.h"
#include "onebit/kernels/cpu/bf16x3_gemm.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/network.h"

namespace onebit::model {
namespace {

using kernels::PackedTernary;
using testing::random_batch;

enum class Backward { F32, Emulated, Backend };

// The CPU backend with the ternary backward chosen: F32 (the two gemm calls), Emulated (bf16x3 on the
// emulated tiles), Backend (whatever cpu_ops() does: AMX where usable).
class BackwardOps final : public kernels::testing::ForwardingOps<float> {
 public:
  BackwardOps(kernels::Ops<float>& base, Backward mode) : ForwardingOps(base), base_(base), mode_(mode) {}
  int calls = 0;

  bool pack_ternary(std::unique_ptr<PackedTernary>& packed, const float* w_eff, int out, int in,
                    const kernels::QuantScale* scale) override {
    if (mode_ != Backward::Emulated) return base_.pack_ternary(packed, w_eff, out, in, scale);
    auto* p = dynamic_cast<Packed*>(packed.get());
    if (!p) {
      auto fresh = std::make_unique<Packed>();
      p = fresh.get();
      packed = std::move(fresh);
    }
    if (!base_.pack_ternary(p->inner, w_eff, out, in, scale)) return false;
    kernels::cpu::bf16x3_pack_weights(p->w, w_eff, out, in, scale->scale);
    return true;
  }
  void ternary_linear_forward(float* y, const float* xq, int N, const PackedTernary& packed) override {
    base_.ternary_linear_forward(y, xq, N, mode_ == Backward::Emulated ? *dynamic_cast<const Packed&>(packed).inner : packed);
  }
  bool ternary_linear_backward(float* dx, float dx_beta, float* dw, const float* dy, const float* xq, int N,
                               const PackedTernary& packed) override {
    if (mode_ == Backward::F32) return false;
    bool used = true;
    if (mode_ == Backward::Backend) {
      used = base_.ternary_linear_backward(dx, dx_beta, dw, dy, xq, N, packed);
    } else {
      const auto& w = dynamic_cast<const Packed&>(packed).w;
      const auto& k = kernels::testing::emulated_tile_kernel();
      kernels::cpu::bf16x3_backward_dx(dx, dx_beta, dy, N, w, k);
      kernels::cpu::bf16x3_backward_dw(dw, dy, xq, N, w.out, w.in, k);
    }
    calls += used;
    return used;
  }

 private:
  struct Packed final : PackedTernary {
    std::unique_ptr<PackedTernary> inner;
    kernels::cpu::Bf16x3Weights w;
  };
  kernels::Ops<float>& base_;
  Backward mode_;
};

ModelConfig config() {
  ModelConfig c = testing::small_config();
  c.vocab_size = 200;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.quantization.lm_head = Precision::Ternary;  // the head's int path (and its chunked backward) too
  return c;
}

// Grads of one step: two accumulated micro-batches (dW accumulates across them).
std::vector<float> step_grads(BackwardOps& ops, uint64_t seed) {
  const ModelConfig c = config();
  Network<float> net(c, ops);
  net.init_weights(seed);
  net.set_quant_state({QuantPhase::Hard, 0});
  net.zero_grad();
  for (int mb = 0; mb < 2; ++mb) {
    const testing::Batch b = random_batch(c, 2, 40, seed + 1 + mb);
    net.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    net.backward(0.5f);
  }
  return std::vector<float>(net.grads(), net.grads() + net.num_params());
}

void expect_close(const std::vector<float>& g, const std::vector<float>& ref, const char* what) {
  const ModelConfig c = config();
  kernels::testing::ForwardingOps<float> plain(kernels::cpu_ops());
  Network<float> net(c, plain);
  for (const auto& info : net.layout().info) {
    double num = 0, den = 0;
    for (size_t i = info.offset; i < info.offset + info.numel; ++i) {
      num += ((double)g[i] - ref[i]) * ((double)g[i] - ref[i]);
      den += (double)ref[i] * ref[i];
    }
    EXPECT_LE(std::sqrt(num), 2e-6 * std::sqrt(den)) << what << ": " << info.name << " rel "
                                                      << std::sqrt(num / std::max(den, 1e-300));
  }
}

TEST(Bf16x3Backward, EmulatedStepMatchesF32) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) GTEST_SKIP() << "no AVX-512";
  const uint64_t seed = onebit::test::test_seed();
  BackwardOps f32(kernels::cpu_ops(), Backward::F32), emu(kernels::cpu_ops(), Backward::Emulated);
  const std::vector<float> ref = step_grads(f32, seed), g = step_grads(emu, seed);
  if (emu.calls == 0) GTEST_SKIP() << "no integer Hard-phase forward here (no VNNI)";
  EXPECT_GE(emu.calls, 2 * (7 * config().num_hidden_layers + 1));
  expect_close(g, ref, "emulated");
}

TEST(Bf16x3Backward, AmxStepMatchesF32) {
  if (!kernels::cpu::bf16x3_available()) GTEST_SKIP() << "AMX-BF16 not usable here";
  setenv("ONEBIT_AMX_BACKWARD", "1", 1);  // the opt-in (bf16x3_gemm.h), read at every pack
  const uint64_t seed = onebit::test::test_seed();
  BackwardOps f32(kernels::cpu_ops(), Backward::F32), amx(kernels::cpu_ops(), Backward::Backend);
  const std::vector<float> ref = step_grads(f32, seed), g = step_grads(amx, seed);
  EXPECT_GE(amx.calls, 2 * (7 * config().num_hidden_layers + 1));
  expect_close(g, ref, "amx");
}

}  // namespace
}  // namespace onebit::model
