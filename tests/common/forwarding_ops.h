#pragma once
// A test decorator base of the kernel interface: an Ops<T> that forwards every call to a base backend.
// Decorators (tests/model/quant_code_replay.h, the transfer counter of tests/train) override the few
// calls they watch; every other call, memory included, is the base backend's.
#include <cstdint>
#include <memory>

#include "onebit/kernels/kernels.h"

namespace onebit::kernels::testing {

// An Ops<T> that forwards every call to `base` (the kernels' whole interface) but ternary_linear_forward_group,
// whose default (false) sends a group's products through ternary_linear_forward, where decorators watch them.
template <typename T>
class ForwardingOps : public Ops<T> {
 public:
  explicit ForwardingOps(Ops<T>& base) : b_(base) {}
  const char* name() const override { return b_.name(); }
  void set_num_threads(int n) override { b_.set_num_threads(n); }
  T* alloc(size_t n) override { return b_.alloc(n); }
  void free(T* p) override { b_.free(p); }
  void zero(T* p, size_t n) override { b_.zero(p, n); }
  void copy(T* d, const T* s, size_t n) override { b_.copy(d, s, n); }
  void upload(T* d, const T* h, size_t n) override { b_.upload(d, h, n); }
  void download(T* h, const T* s, size_t n) override { b_.download(h, s, n); }
  void* alloc_bytes(size_t bytes) override { return b_.alloc_bytes(bytes); }
  void free_bytes(void* p) override { b_.free_bytes(p); }
  void zero_bytes(void* p, size_t bytes) override { b_.zero_bytes(p, bytes); }
  void upload_bytes(void* d, const void* h, size_t bytes) override { b_.upload_bytes(d, h, bytes); }
  void download_bytes(void* h, const void* s, size_t bytes) override { b_.download_bytes(h, s, bytes); }
  void copy_bytes(void* d, const void* s, size_t bytes) override { b_.copy_bytes(d, s, bytes); }
  void axpy(T* y, T a, const T* x, size_t n) override { b_.axpy(y, a, x, n); }
  void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C,
            int ldc) override {
    b_.gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void embedding_forward(T* out, const int32_t* tok, const T* table, int N, int C, int V) override {
    b_.embedding_forward(out, tok, table, N, C, V);
  }
  void embedding_backward(T* dt, const T* dout, const int32_t* tok, int N, int C) override {
    b_.embedding_backward(dt, dout, tok, N, C);
  }
  void rmsnorm_forward(T* out, T* out_q, T* rstd, const T* x, const T* w, int N, int C, float eps) override {
    b_.rmsnorm_forward(out, out_q, rstd, x, w, N, C, eps);
    if (out_q) on_act_quant(out_q, out, N, C);
  }
  void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, int N, int C) override {
    b_.rmsnorm_backward(dx, dw, dout, x, w, rstd, N, C);
  }
  void act_quant_int8(T* out, const T* x, int N, int C) override {
    b_.act_quant_int8(out, x, N, C);
    on_act_quant(out, x, N, C);
  }
  void weight_quant_scale(QuantScale* s, const T* w, size_t n, WeightQuant q) override {
    b_.weight_quant_scale(s, w, n, q);
  }
  void ternary_scale_clamped(QuantScale* s, const T* w, size_t n) override { b_.ternary_scale_clamped(s, w, n); }
  void weight_quantize(T* out, const T* w, size_t n, WeightQuant q, const QuantScale* s, float k) override {
    b_.weight_quantize(out, w, n, q, s, k);
  }
  void weight_code_counts(int64_t* counts, const T* w, size_t n, WeightQuant q, const QuantScale* s) override {
    b_.weight_code_counts(counts, w, n, q, s);
  }
  void rope(T* x, const T* c, const T* s, int B, int Tn, int H, int hd, bool inv) override {
    b_.rope(x, c, s, B, Tn, H, hd, inv);
  }
  void attention_forward(T* y, T* lse, const T* q, const T* k, const T* v, int B, int Tn, int H, int KV, int hd,
                         float p, uint64_t seed) override {
    b_.attention_forward(y, lse, q, k, v, B, Tn, H, KV, hd, p, seed);
  }
  void attention_backward(T* dq, T* dk, T* dv, const T* dy, const T* q, const T* k, const T* v, const T* y,
                          const T* lse, int B, int Tn, int H, int KV, int hd, float p, uint64_t seed) override {
    b_.attention_backward(dq, dk, dv, dy, q, k, v, y, lse, B, Tn, H, KV, hd, p, seed);
  }
  void gated_act_forward(T* out, const T* g, const T* u, size_t n, GatedAct a) override {
    b_.gated_act_forward(out, g, u, n, a);
  }
  void gated_act_backward(T* dg, T* du, const T* dout, const T* g, const T* u, size_t n,
                          GatedAct a) override {
    b_.gated_act_backward(dg, du, dout, g, u, n, a);
  }
  void residual_forward(T* out, const T* x, const T* y, T scale, float p, uint64_t seed, size_t n) override {
    b_.residual_forward(out, x, y, scale, p, seed, n);
  }
  void residual_backward(T* dy, const T* dout, T scale, float p, uint64_t seed, size_t n) override {
    b_.residual_backward(dy, dout, scale, p, seed, n);
  }
  void cross_entropy(T* logits, T* losses, double* loss_sum, const int32_t* tgt, int N, int V, T dscale,
                     bool want_grad) override {
    b_.cross_entropy(logits, losses, loss_sum, tgt, N, V, dscale, want_grad);
  }
  size_t logits_chunk_elems() const override { return b_.logits_chunk_elems(); }
  int logits_chunk_row_multiple() const override { return b_.logits_chunk_row_multiple(); }
  void grad_norm_sq(double* norm_sq, const T* g, size_t n) override { b_.grad_norm_sq(norm_sq, g, n); }
  void clip_factor(T* factor, const double* norm_sq, double max_norm) override {
    b_.clip_factor(factor, norm_sq, max_norm);
  }
  void adamw_step(T* p, const T* g, T* m, T* v, const AdamWRange* ranges, size_t num_ranges, const AdamWHyper& h,
                  const T* clip) override {
    b_.adamw_step(p, g, m, v, ranges, num_ranges, h, clip);
  }
  // The integer Hard-phase forward and its backward are forwarded too, so the f32 side runs what the trainer runs.
  bool pack_ternary(std::unique_ptr<PackedTernary>& packed, const T* w_eff, int out, int in,
                    const QuantScale* scale) override {
    return b_.pack_ternary(packed, w_eff, out, in, scale);
  }
  void ternary_linear_forward(T* y, const T* xq, int N, const PackedTernary& packed) override {
    b_.ternary_linear_forward(y, xq, N, packed);
  }
  bool ternary_linear_backward(T* dx, T dx_beta, T* dw, const T* dy, const T* xq, int N,
                               const PackedTernary& packed) override {
    return b_.ternary_linear_backward(dx, dx_beta, dw, dy, xq, N, packed);
  }
  bool has_packed_backward(const PackedTernary& packed) const override { return b_.has_packed_backward(packed); }

 protected:
  // Called after every int8 activation quantization: out holds the dequantized codes of x.
  virtual void on_act_quant(T* out, const T* x, int N, int C) {}

 private:
  Ops<T>& b_;
};

}  // namespace onebit::kernels::testing
