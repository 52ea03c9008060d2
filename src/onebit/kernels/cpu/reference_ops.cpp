// Ops<T> over the plain reference loops, for float and double.
#include "onebit/core/error.h"
#include "onebit/kernels/cpu/host_memory.h"
#include "onebit/kernels/cpu/reference.h"
#include "onebit/kernels/kernels.h"

namespace onebit::kernels {
namespace {

template <typename T>
class ReferenceOps final : public cpu::HostMemoryOps<T> {
 public:
  const char* name() const override { return "cpu-reference"; }
  void set_num_threads(int) override {}

  void axpy(T* y, T a, const T* x, size_t n) override {
    for (size_t i = 0; i < n; ++i) y[i] += a * x[i];
  }
  void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C,
            int ldc) override {
    ref::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void embedding_forward(T* out, const int32_t* tokens, const T* table, int N, int C, int vocab) override {
    for (int n = 0; n < N; ++n)
      OB_CHECK(tokens[n] >= 0 && tokens[n] < vocab, "embedding: token id ", tokens[n], " at position ", n,
               " is outside the vocabulary [0, ", vocab, ")");
    ref::embedding_forward(out, tokens, table, N, C);
  }
  void embedding_backward(T* dtable, const T* dout, const int32_t* tokens, int N, int C) override {
    ref::embedding_backward(dtable, dout, tokens, N, C);
  }
  void rmsnorm_forward(T* out, T* out_q, T* rstd, const T* x, const T* w, int N, int C, float eps) override {
    ref::rmsnorm_forward(out, out_q, rstd, x, w, N, C, eps);
  }
  void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, int N, int C) override {
    ref::rmsnorm_backward(dx, dw, dout, x, w, rstd, N, C);
  }
  void act_quant_int8(T* out, const T* x, int N, int C) override { ref::act_quant_int8(out, x, N, C); }
  void weight_quant_scale(QuantScale* scale, const T* w, size_t n, WeightQuant q) override {
    *scale = ref::weight_quant_scale(w, n, q);
  }
  void ternary_scale_clamped(QuantScale* scale, const T* w, size_t n) override {
    *scale = ref::ternary_scale_clamped(w, n);
  }
  void weight_quantize(T* out, const T* w, size_t n, WeightQuant q, const QuantScale* s, float k) override {
    ref::weight_quantize(out, w, n, q, *s, k);
  }
  void weight_code_counts(int64_t* counts, const T* w, size_t n, WeightQuant q, const QuantScale* s) override {
    ref::weight_code_counts(w, n, q, *s, counts);
  }
  void rope(T* x, const T* cos, const T* sin, int B, int Tn, int H, int hd, bool inverse) override {
    ref::rope(x, cos, sin, B, Tn, H, hd, inverse);
  }
  void attention_forward(T* y, T* lse, const T* q, const T* k, const T* v, int B, int Tn, int H, int KV, int hd,
                         float p, uint64_t seed) override {
    ref::attention_forward(y, lse, q, k, v, B, Tn, H, KV, hd, p, seed);
  }
  void attention_backward(T* dq, T* dk, T* dv, const T* dy, const T* q, const T* k, const T* v, const T* y,
                          const T* lse, int B, int Tn, int H, int KV, int hd, float p, uint64_t seed) override {
    ref::attention_backward(dq, dk, dv, dy, q, k, v, y, lse, B, Tn, H, KV, hd, p, seed);
  }
  void gated_act_forward(T* out, const T* gate, const T* up, size_t n, GatedAct act) override {
    ref::gated_act_forward(out, gate, up, n, act);
  }
  void gated_act_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, size_t n,
                          GatedAct act) override {
    ref::gated_act_backward(dgate, dup, dout, gate, up, n, act);
  }
  void residual_forward(T* out, const T* x, const T* y, T scale, float p, uint64_t seed, size_t n) override {
    ref::residual_forward(out, x, y, scale, p, seed, n);
  }
  void residual_backward(T* dy, const T* dout, T scale, float p, uint64_t seed, size_t n) override {
    ref::residual_backward(dy, dout, scale, p, seed, n);
  }
  void cross_entropy(T* logits, T* losses, double* loss_sum, const int32_t* targets, int N, int V, T dscale,
                     bool want_grad) override {
    const double sum = ref::cross_entropy(logits, losses, targets, N, V, dscale, want_grad);
    if (loss_sum) *loss_sum += sum;
  }
  void grad_norm_sq(double* norm_sq, const T* g, size_t n) override { *norm_sq = ref::grad_norm_sq(g, n); }
  void clip_factor(T* factor, const double* norm_sq, double max_norm) override {
    *factor = ref::clip_factor<T>(*norm_sq, max_norm);
  }
  void adamw_step(T* params, const T* grads, T* m, T* v, const AdamWRange* ranges, size_t num_ranges,
                  const AdamWHyper& h, const T* clip) override {
    ref::adamw_step(params, grads, m, v, ranges, num_ranges, h, clip);
  }
};

}  // namespace

template <typename T>
Ops<T>& reference_ops() {
  static ReferenceOps<T> ops;
  return ops;
}
template Ops<float>& reference_ops<float>();
template Ops<double>& reference_ops<double>();

}  // namespace onebit::kernels
