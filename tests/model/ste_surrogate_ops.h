#pragma once
// Test decorator of the kernel interface for the straight-through-estimator check: it forwards every
// call to an inner Ops<T>, except the quantizers. record() runs a forward and keeps, at those parameters
// and that batch, the offset q(x) - x of every quantizer call, keyed by its destination buffer (a tied
// weight is quantized into two buffers, one per use, possibly at two precisions); with surrogate mode
// on, each quantizer then returns x + the recorded offset, which is the function whose gradient the
// STE claims to compute. So a forward must give every quantizer call its own buffer: no checkpoint
// segments (a recomputed segment reuses its slots), which record() detects and rejects.
// It offers no integer path (pack_ternary stays false): the surrogate's inputs are not int8 codes.
#include <functional>
#include <map>
#include <string>
#include <stdexcept>

#include "onebit/kernels/kernels.h"

namespace onebit::model::testing {

template <typename T>
class SteSurrogateOps final : public kernels::Ops<T> {
 public:
  explicit SteSurrogateOps(kernels::Ops<T>& inner) : in_(inner) {}
  ~SteSurrogateOps() override { clear(); }

  // Runs `forward` (one forward pass of a network built on this Ops) and records every quantizer's offset.
  void record(const std::function<void()>& forward) {
    clear();
    surrogate_ = false;
    recording_ = true;
    try {
      forward();
    } catch (...) {
      recording_ = false;
      throw;
    }
    recording_ = false;
  }
  void set_surrogate_mode(bool on) { surrogate_ = on; }
  size_t recorded_weights() const { return weights_.size(); }
  size_t recorded_activations() const { return acts_.size(); }

  // ---- the quantizers ----
  void act_quant_int8(T* out, const T* x, int N, int C) override {
    const size_t n = (size_t)N * C;
    if (surrogate_) return apply(acts_, out, out, x, n, "an activation");
    in_.act_quant_int8(out, x, N, C);
    if (recording_) keep(acts_, out, out, x, n);
  }
  void weight_quantize(T* out, const T* w, size_t n, kernels::WeightQuant q, const kernels::QuantScale* s,
                       float soft_k) override {
    if (surrogate_) return apply(weights_, out, out, w, n, "a weight");
    in_.weight_quantize(out, w, n, q, s, soft_k);
    if (recording_) keep(weights_, out, out, w, n);
  }
  // The fused norm + quantization goes through act_quant_int8 above.
  void rmsnorm_forward(T* out, T* out_q, T* rstd, const T* x, const T* w, int N, int C, float eps) override {
    in_.rmsnorm_forward(out, nullptr, rstd, x, w, N, C, eps);
    if (out_q) act_quant_int8(out_q, out, N, C);
  }

  // ---- everything else is the inner backend's ----
  const char* name() const override { return "ste-surrogate"; }
  void set_num_threads(int n) override { in_.set_num_threads(n); }
  T* alloc(size_t n) override { return in_.alloc(n); }
  void free(T* p) override { in_.free(p); }
  void zero(T* p, size_t n) override { in_.zero(p, n); }
  void copy(T* dst, const T* src, size_t n) override { in_.copy(dst, src, n); }
  void upload(T* dst, const T* host, size_t n) override { in_.upload(dst, host, n); }
  void download(T* host, const T* src, size_t n) override { in_.download(host, src, n); }
  void* alloc_bytes(size_t bytes) override { return in_.alloc_bytes(bytes); }
  void free_bytes(void* p) override { in_.free_bytes(p); }
  void zero_bytes(void* p, size_t bytes) override { in_.zero_bytes(p, bytes); }
  void upload_bytes(void* d, const void* h, size_t bytes) override { in_.upload_bytes(d, h, bytes); }
  void download_bytes(void* h, const void* s, size_t bytes) override { in_.download_bytes(h, s, bytes); }
  void axpy(T* y, T a, const T* x, size_t n) override { in_.axpy(y, a, x, n); }
  void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C,
            int ldc) override {
    in_.gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void embedding_forward(T* out, const int32_t* tokens, const T* table, int N, int C, int vocab) override {
    in_.embedding_forward(out, tokens, table, N, C, vocab);
  }
  void embedding_backward(T* dtable, const T* dout, const int32_t* tokens, int N, int C) override {
    in_.embedding_backward(dtable, dout, tokens, N, C);
  }
  void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, int N, int C) override {
    in_.rmsnorm_backward(dx, dw, dout, x, w, rstd, N, C);
  }
  void weight_quant_scale(kernels::QuantScale* s, const T* w, size_t n, kernels::WeightQuant q) override {
    in_.weight_quant_scale(s, w, n, q);
  }
  void weight_code_counts(int64_t* counts, const T* w, size_t n, kernels::WeightQuant q,
                          const kernels::QuantScale* s) override {
    in_.weight_code_counts(counts, w, n, q, s);
  }
  void rope(T* x, const T* cos, const T* sin, int B, int Tn, int H, int hd, bool inverse) override {
    in_.rope(x, cos, sin, B, Tn, H, hd, inverse);
  }
  void attention_forward(T* y, T* lse, const T* q, const T* k, const T* v, int B, int Tn, int H, int KV,
                         int hd) override {
    in_.attention_forward(y, lse, q, k, v, B, Tn, H, KV, hd);
  }
  void attention_backward(T* dq, T* dk, T* dv, const T* dy, const T* q, const T* k, const T* v, const T* y,
                          const T* lse, int B, int Tn, int H, int KV, int hd) override {
    in_.attention_backward(dq, dk, dv, dy, q, k, v, y, lse, B, Tn, H, KV, hd);
  }
  void gated_act_forward(T* out, const T* gate, const T* up, size_t n, kernels::GatedAct act) override {
    in_.gated_act_forward(out, gate, up, n, act);
  }
  void gated_act_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, size_t n,
                          kernels::GatedAct act) override {
    in_.gated_act_backward(dgate, dup, dout, gate, up, n, act);
  }
  void residual_forward(T* out, const T* x, const T* y, T scale, float p, uint64_t seed, size_t n) override {
    in_.residual_forward(out, x, y, scale, p, seed, n);
  }
  void residual_backward(T* dy, const T* dout, T scale, float p, uint64_t seed, size_t n) override {
    in_.residual_backward(dy, dout, scale, p, seed, n);
  }
  void cross_entropy(T* logits, T* losses, double* loss_sum, const int32_t* targets, int N, int V, T dscale,
                     bool want_grad) override {
    in_.cross_entropy(logits, losses, loss_sum, targets, N, V, dscale, want_grad);
  }
  void grad_norm_sq(double* norm_sq, const T* g, size_t n) override { in_.grad_norm_sq(norm_sq, g, n); }
  void clip_factor(T* factor, const double* norm_sq, double max_norm) override {
    in_.clip_factor(factor, norm_sq, max_norm);
  }
  void adamw_step(T* p, const T* g, T* m, T* v, const kernels::AdamWRange* ranges, size_t num_ranges,
                  const kernels::AdamWHyper& h, const T* clip) override {
    in_.adamw_step(p, g, m, v, ranges, num_ranges, h, clip);
  }

 private:
  struct Offset {
    T* data;
    size_t n;
  };
  using Offsets = std::map<const T*, Offset>;

  // offset = q(x) - x, where `out` already holds q(x).
  void keep(Offsets& m, const T* key, const T* out, const T* x, size_t n) {
    if (m.count(key))
      throw std::logic_error("SteSurrogateOps: a quantizer buffer was used twice in one recorded forward "
                             "(checkpoint segments?): offsets would be ambiguous");
    T* off = in_.alloc(n);
    in_.copy(off, out, n);
    in_.axpy(off, T(-1), x, n);
    m[key] = {off, n};
  }
  // out = x + the offset recorded under `key`.
  void apply(const Offsets& m, const T* key, T* out, const T* x, size_t n, const char* what) {
    auto it = m.find(key);
    if (it == m.end() || it->second.n != n)
      throw std::logic_error(std::string("SteSurrogateOps: no recorded offset for ") + what);
    if (out != x) in_.copy(out, x, n);
    in_.axpy(out, T(1), it->second.data, n);
  }
  void clear() {
    for (auto* m : {&weights_, &acts_})
      for (auto& [k, off] : *m) in_.free(off.data);
    weights_.clear();
    acts_.clear();
  }

  kernels::Ops<T>& in_;
  bool surrogate_ = false, recording_ = false;
  Offsets weights_, acts_;
};

}  // namespace onebit::model::testing
