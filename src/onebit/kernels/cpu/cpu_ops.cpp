// Ops<float> for the CPU: the fast kernels of fast.h behind the device-agnostic interface.
#include <cstdlib>

#include "onebit/core/error.h"
#include "onebit/kernels/cpu/fast.h"
#include "onebit/kernels/cpu/host_memory.h"
#include "onebit/kernels/cpu/bf16x3_gemm.h"
#include "onebit/kernels/cpu/ternary_gemm.h"
#include "onebit/kernels/kernels.h"

namespace onebit::kernels {
namespace {

// The LM head runs over chunk_rows = budget / vocab rows at a time (logits, cross-entropy, both
// gradients). 32 Mi f32 (128 MiB, 1048 rows at vocab 32000) by default: on the 16-core Xeon a 25m
// Hard-phase step took 0.43-0.44 s with it against 0.59-0.61 s with 8 Mi (262 rows; AMX backward on),
// 2.3-2.6 vs 2.9-3.4 s at 2 threads (bench/results/xeon_s8_decode_train_ab.log): the head's GEMMs get 4x the
// rows per call and its dW (32000 x 512 f32) is read and written 2 times a step instead of 8.
// ONEBIT_LOGITS_CHUNK_MIB sets another budget in MiB (a tuning knob for benchmarks). Read once.
size_t logits_chunk_budget() {
  static const size_t elems = [] {
    const char* env = std::getenv("ONEBIT_LOGITS_CHUNK_MIB");
    if (!env || !*env) return size_t{32} << 20;
    char* end = nullptr;
    const long mib = std::strtol(env, &end, 10);
    if (*end || mib < 1 || mib > 65536)
      fail("ONEBIT_LOGITS_CHUNK_MIB=", printable(env, 40), ": expected a whole number of MiB from 1 to 65536");
    return (size_t)mib << 18;  // MiB of 4-byte values
  }();
  return elems;
}

struct CpuTernaryPack final : PackedTernary {
  cpu::TernaryPack pack;
  bool backward = false;  // `back` holds this step's codes: the AMX-BF16 backward applies
  cpu::Bf16x3Weights back;
};

class CpuOps final : public cpu::HostMemoryOps<float> {
 public:
  const char* name() const override { return "cpu"; }
  void set_num_threads(int n) override { cpu::set_threads(n); }

  void axpy(float* y, float a, const float* x, size_t n) override { cpu::axpy(y, a, x, n); }
  size_t logits_chunk_elems() const override { return logits_chunk_budget(); }
  void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
            float beta, float* C, int ldc) override {
    cpu::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void embedding_forward(float* out, const int32_t* tokens, const float* table, int N, int C, int vocab) override {
    cpu::embedding_forward(out, tokens, table, N, C, vocab);
  }
  void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int N, int C) override {
    cpu::embedding_backward(dtable, dout, tokens, N, C);
  }
  void rmsnorm_forward(float* out, float* out_q, float* rstd, const float* x, const float* w, int N, int C,
                       float eps) override {
    cpu::rmsnorm_forward(out, out_q, rstd, x, w, N, C, eps);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                        int N, int C) override {
    cpu::rmsnorm_backward(dx, dw, dout, x, w, rstd, N, C);
  }
  void act_quant_int8(float* out, const float* x, int N, int C) override { cpu::act_quant_int8(out, x, N, C); }
  void weight_quant_scale(QuantScale* scale, const float* w, size_t n, WeightQuant q) override {
    *scale = cpu::weight_quant_scale(w, n, q);
  }
  void ternary_scale_clamped(QuantScale* scale, const float* w, size_t n) override {
    *scale = cpu::ternary_scale_clamped(w, n);
  }
  void weight_quantize(float* out, const float* w, size_t n, WeightQuant q, const QuantScale* s, float k) override {
    cpu::weight_quantize(out, w, n, q, *s, k);
  }
  void weight_code_counts(int64_t* counts, const float* w, size_t n, WeightQuant q, const QuantScale* s) override {
    cpu::weight_code_counts(w, n, q, *s, counts);
  }
  bool pack_ternary(std::unique_ptr<PackedTernary>& packed, const float* w_eff, int out, int in,
                    const QuantScale* scale) override {
    if (!cpu::ternary_gemm_available() || in <= 0 || in > cpu::kTernaryMaxIn) return false;
    auto* p = dynamic_cast<CpuTernaryPack*>(packed.get());
    if (!p) {
      auto fresh = std::make_unique<CpuTernaryPack>();
      p = fresh.get();
      packed = std::move(fresh);
    }
    cpu::ternary_pack(p->pack, w_eff, out, in, scale->scale);
    p->backward = cpu::bf16x3_backward_enabled();
    if (p->backward) cpu::bf16x3_pack_weights(p->back, w_eff, out, in, scale->scale);
    return true;
  }
  void ternary_linear_forward(float* y, const float* xq, int N, const PackedTernary& packed) override {
    cpu::ternary_gemm(y, xq, N, dynamic_cast<const CpuTernaryPack&>(packed).pack);
  }
  bool ternary_linear_backward(float* dx, float dx_beta, float* dw, const float* dy, const float* xq, int N,
                               const PackedTernary& packed) override {
    const auto& p = dynamic_cast<const CpuTernaryPack&>(packed);
    if (!p.backward) return false;
    cpu::bf16x3_backward_dx(dx, dx_beta, dy, N, p.back);
    cpu::bf16x3_backward_dw(dw, dy, xq, N, p.back.out, p.back.in);
    return true;
  }
  bool has_packed_backward(const PackedTernary& packed) const override {
    return dynamic_cast<const CpuTernaryPack&>(packed).backward;
  }
  void rope(float* x, const float* cos, const float* sin, int B, int T, int H, int hd, bool inverse) override {
    cpu::rope(x, cos, sin, B, T, H, hd, inverse);
  }
  void attention_forward(float* y, float* lse, const float* q, const float* k, const float* v, int B, int T, int H,
                         int KV, int hd, float p, uint64_t seed) override {
    cpu::attention_forward(y, lse, q, k, v, B, T, H, KV, hd, p, seed);
  }
  void attention_backward(float* dq, float* dk, float* dv, const float* dy, const float* q, const float* k,
                          const float* v, const float* y, const float* lse, int B, int T, int H, int KV, int hd,
                          float p, uint64_t seed) override {
    cpu::attention_backward(dq, dk, dv, dy, q, k, v, y, lse, B, T, H, KV, hd, p, seed);
  }
  void gated_act_forward(float* out, const float* gate, const float* up, size_t n, GatedAct act) override {
    cpu::gated_act_forward(out, gate, up, n, act);
  }
  void gated_act_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n,
                          GatedAct act) override {
    cpu::gated_act_backward(dgate, dup, dout, gate, up, n, act);
  }
  void residual_forward(float* out, const float* x, const float* y, float scale, float p, uint64_t seed,
                        size_t n) override {
    cpu::residual_forward(out, x, y, scale, p, seed, n);
  }
  void residual_backward(float* dy, const float* dout, float scale, float p, uint64_t seed, size_t n) override {
    cpu::residual_backward(dy, dout, scale, p, seed, n);
  }
  void cross_entropy(float* logits, float* losses, double* loss_sum, const int32_t* targets, int N, int V,
                     float dscale, bool want_grad) override {
    const double sum = cpu::cross_entropy(logits, losses, targets, N, V, dscale, want_grad);
    if (loss_sum) *loss_sum += sum;
  }
  void grad_norm_sq(double* norm_sq, const float* g, size_t n) override { *norm_sq = cpu::grad_norm_sq(g, n); }
  void clip_factor(float* factor, const double* norm_sq, double max_norm) override {
    *factor = cpu::clip_factor(*norm_sq, max_norm);
  }
  void adamw_step(float* params, const float* grads, float* m, float* v, const AdamWRange* ranges, size_t num_ranges,
                  const AdamWHyper& h, const float* clip) override {
    cpu::adamw_step(params, grads, m, v, ranges, num_ranges, h, clip);
  }
};

}  // namespace

Ops<float>& cpu_ops() {
  static CpuOps ops;
  static const bool init = (cpu::threads(), true);  // pins OpenBLAS to one thread before first use
  (void)init;
  return ops;
}

}  // namespace onebit::kernels
