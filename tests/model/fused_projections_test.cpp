// The fused Q/K/V and gate/up backward (Network::set_fused_projections): one dx and one dW product per
// projection group, the group's output gradients written as column blocks of one matrix by the strided
// calls (Ops::attention_backward_ld, qk_norm_rope_backward_ld, gated_act_backward_ld). On the CPU these
// run the interface's defaults (contiguous scratch + row copies), so the network-level logic (which
// buffers, which strides, which weights) is held here on every machine; tests/cuda holds the CUDA
// kernels' own strided writes. Every gradient and the loss must equal the unfused network's up to the
// products' summation order; a recorder proves the fused products ran.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "forwarding_ops.h"
#include "model_test_util.h"
#include "test_seed.h"
#include "onebit/kernels/cpu/ternary_gemm.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/network.h"

namespace onebit::model {
namespace {

using testing::Batch;
using testing::random_batch;

// Records the inner dimension of every dx-shaped product (op(A) = A, op(B) = B).
template <typename T>
class GemmRecorder : public kernels::testing::ForwardingOps<T> {
 public:
  using kernels::testing::ForwardingOps<T>::ForwardingOps;
  void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C,
            int ldc) override {
    if (!ta && !tb) inner.push_back(K);
    kernels::testing::ForwardingOps<T>::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  std::vector<int> inner;
};

// d 16, 4 heads of 4, 2 kv heads (kvd 8), ff 24: every group width a multiple of 8 and every weight a
// multiple of 16 elements, so both groups can fuse.
ModelConfig fusable_config() {
  ModelConfig c = testing::small_config();
  c.hidden_size = 16;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 24;
  return c;
}

struct Case {
  std::string name;
  ModelConfig cfg;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  out.push_back({"qknorm_subln_swiglu", fusable_config()});
  ModelConfig c = fusable_config();
  c.sub_ln = false;
  out.push_back({"qknorm_no_subln", c});
  c = fusable_config();
  c.qk_norm = false;  // only gate/up fuse
  c.hidden_act = HiddenAct::ReLU2;
  out.push_back({"no_qknorm_relu2", c});
  c = fusable_config();
  c.dropout = 0.2f;
  c.hidden_act = HiddenAct::GELU;
  c.tie_word_embeddings = true;
  out.push_back({"dropout_gelu_tied", c});
  c = fusable_config();
  c.quantization.mlp = Precision::Binary;
  c.num_key_value_heads = 4;  // no GQA: kvd = d
  c.intermediate_size = 32;   // 2 ff != d + 2 kvd, so the recorder tells the groups apart
  out.push_back({"binary_mlp_mha", c});
  c = fusable_config();
  c.quantization.overrides["model.layers.1.self_attn.k_proj"] = Precision::F32;  // layer 1's Q/K/V unfused
  out.push_back({"mixed_precision_group", c});
  return out;
}

struct Result {
  double loss;
  std::vector<double> grads;
  std::vector<int> inner;
};

template <typename T>
Result run(kernels::Ops<T>& base, const ModelConfig& cfg, QuantState q, bool fused, uint64_t seed) {
  GemmRecorder<T> ops(base);
  Network<T> net(cfg, ops);
  net.init_weights(seed);
  net.set_quant_state(q);
  net.set_training(true);
  net.set_dropout_seed(seed + 11);
  net.set_fused_projections(fused);
  const Batch b = random_batch(cfg, 2, 5, seed + 3);
  net.zero_grad();
  Result r;
  r.loss = net.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
  ops.inner.clear();  // the backward's products only
  net.backward(T(1));
  r.grads.assign(net.grads(), net.grads() + net.num_params());
  r.inner = ops.inner;
  return r;
}

// A backend that packs the ternary weights for the Hard phase's integer forward (counting those products) and
// declares whether it has a packed backward of its own: the CUDA backend has none (its int8 forward must leave
// the backward fusable), the CPU has one with ONEBIT_AMX_BACKWARD=1 (then a packed group stays unfused).
template <typename T>
class PackedForward : public kernels::testing::ForwardingOps<T> {
 public:
  PackedForward(kernels::Ops<T>& base, bool own_backward)
      : kernels::testing::ForwardingOps<T>(base), own_backward_(own_backward) {}
  void ternary_linear_forward(T* y, const T* xq, int N, const kernels::PackedTernary& packed) override {
    ++packed_forwards;
    kernels::testing::ForwardingOps<T>::ternary_linear_forward(y, xq, N, packed);
  }
  bool has_packed_backward(const kernels::PackedTernary&) const override { return own_backward_; }
  int packed_forwards = 0;

 private:
  bool own_backward_;
};

// hard_fuses: whether the Hard phase's ternary groups fuse (false where the backend declares a packed backward).
template <typename T>
void check(kernels::Ops<T>& base, double tol, std::vector<QuantState> phases, bool hard_fuses = true) {
  const uint64_t seed = onebit::test::test_seed(0x5eed'f05e);
  for (const Case& c : cases()) {
    for (const QuantState& q : phases) {
      SCOPED_TRACE(c.name + " phase " + std::to_string((int)q.phase));
      const Result plain = run(base, c.cfg, q, false, seed);
      const Result fused = run(base, c.cfg, q, true, seed);
      EXPECT_EQ(plain.loss, fused.loss);  // the forward is the same code
      const int d = c.cfg.hidden_size, kvd = c.cfg.num_key_value_heads * c.cfg.head_dim(),
                ff = c.cfg.intermediate_size;
      const auto count = [](const std::vector<int>& v, int k) { return (int)std::count(v.begin(), v.end(), k); };
      // Every layer's gate/up ran as one product (inner dimension 2 ff), and Q/K/V (d + 2 kvd) in every
      // layer whose group is fusable; the unfused run has none of those. The mixed group fuses in full
      // precision only (every effective weight is then the master weight, adjacent in the layout).
      const int L = c.cfg.num_hidden_layers;
      const bool split = c.name == "mixed_precision_group" && q.phase != QuantPhase::FullPrecision;
      // A backend's own packed backward keeps the ternary groups unfused in the Hard phase (binary ones never pack).
      const bool own = q.phase == QuantPhase::Hard && !hard_fuses;
      const bool qkv_own = own && c.cfg.quantization.attention == Precision::Ternary;
      const bool gu_own = own && c.cfg.quantization.mlp == Precision::Ternary;
      const int qkv_layers = !c.cfg.qk_norm || qkv_own ? 0 : split ? L - 1 : L;
      EXPECT_EQ(count(fused.inner, 2 * ff), gu_own ? 0 : L);
      EXPECT_EQ(count(fused.inner, d + 2 * kvd), qkv_layers);
      EXPECT_EQ(count(plain.inner, 2 * ff), 0);
      EXPECT_EQ(count(plain.inner, d + 2 * kvd), 0);
      double scale = 0.0;
      for (double g : plain.grads) scale = std::max(scale, std::fabs(g));
      ASSERT_GT(scale, 0.0);
      size_t worst = 0;
      double worst_err = 0.0;
      for (size_t i = 0; i < plain.grads.size(); ++i) {
        const double e = std::fabs(plain.grads[i] - fused.grads[i]);
        if (!(e <= worst_err)) worst_err = e, worst = i;  // NaN-safe: a NaN becomes the worst
      }
      EXPECT_LE(worst_err, tol * scale) << "gradient " << worst << ": unfused " << plain.grads[worst] << ", fused "
                                        << fused.grads[worst] << " (largest |g| " << scale << ")";
    }
  }
}

TEST(FusedProjections, ReferenceDoubleEveryPhase) {
  check<double>(kernels::reference_ops<double>(), 1e-12,
                {{QuantPhase::FullPrecision, 0.0f}, {QuantPhase::Soft, 3.0f}, {QuantPhase::Hard, 0.0f}});
}

// The fast CPU backend (its own GEMM paths, PER_GEMM_PATH) in the phases where it has no integer path
// (the Hard phase's packed ternary backward is never fused: fusable_group).
TEST(FusedProjections, FastCpuFloat) {
  check<float>(kernels::cpu_ops(), 2e-5, {{QuantPhase::FullPrecision, 0.0f}, {QuantPhase::Soft, 3.0f}});
}

// The Hard phase on the integer forward (packed ternary weights, int8 activations): a backend without a packed
// backward (as CUDA) still fuses the backward over the effective weights, and one with its own packed backward
// keeps each linear's. Regression: the packed forward once turned fusion off wherever it ran (the CUDA Hard
// phase ran seven dx and seven dW products a layer instead of four each).
TEST(FusedProjections, HardPhaseOnThePackedForward) {
  if (!kernels::cpu::ternary_gemm_available()) GTEST_SKIP() << "no packed ternary forward on this CPU";
  for (const bool own_backward : {false, true}) {
    SCOPED_TRACE(own_backward ? "with a packed backward" : "without a packed backward");
    PackedForward<float> ops(kernels::cpu_ops(), own_backward);
    check<float>(ops, 2e-5, {{QuantPhase::Hard, 0.0f}}, !own_backward);
    EXPECT_GT(ops.packed_forwards, 0) << "the Hard phase ran the packed forward";
  }
}

// The backends' defaults keep the bits of the CPU path: nothing fuses unless asked.
TEST(FusedProjections, OffByDefaultOnTheCpu) {
  Network<float> a(fusable_config(), kernels::cpu_ops());
  EXPECT_FALSE(a.fused_projections());
  Network<double> b(fusable_config(), kernels::reference_ops<double>());
  EXPECT_FALSE(b.fused_projections());
}

}  // namespace
}  // namespace onebit::model
