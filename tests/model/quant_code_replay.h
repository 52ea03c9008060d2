#pragma once
// Exact int8 activation codes for the f32-vs-f64 model comparison. The fast f32 network and the f64
// reference run the same Network code, so they quantize activations in the same order: CodeRecorder
// (around the fast backend) records every int8 code the f32 model used; CodeReplayer (around the
// reference) compares its own codes with them, one by one. A code may differ only by one step where
// the f64 value sits on a rounding tie (within f32 error of k + 0.5); any other difference is a bug
// and is counted. The replayer then continues with the f32 model's code (at its own f64 scale), so one
// tie flip does not spread through the rest of the network and the gradients can be held to f32 accuracy.
#include <cmath>
#include <cstdint>
#include <memory>
#include <deque>
#include <vector>

#include "onebit/kernels/kernels.h"

namespace onebit::model::testing {

// An Ops<T> that forwards every call to `base` (the kernels' whole interface).
template <typename T>
class ForwardingOps : public kernels::Ops<T> {
 public:
  explicit ForwardingOps(kernels::Ops<T>& base) : b_(base) {}
  const char* name() const override { return b_.name(); }
  void set_num_threads(int n) override { b_.set_num_threads(n); }
  T* alloc(size_t n) override { return b_.alloc(n); }
  void free(T* p) override { b_.free(p); }
  void zero(T* p, size_t n) override { b_.zero(p, n); }
  void copy(T* d, const T* s, size_t n) override { b_.copy(d, s, n); }
  void upload(T* d, const T* h, size_t n) override { b_.upload(d, h, n); }
  void download(T* h, const T* s, size_t n) override { b_.download(h, s, n); }
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
  kernels::QuantScale weight_quant_scale(const T* w, size_t n, kernels::WeightQuant q) override {
    return b_.weight_quant_scale(w, n, q);
  }
  void weight_quantize(T* out, const T* w, size_t n, kernels::WeightQuant q, kernels::QuantScale s,
                       float k) override {
    b_.weight_quantize(out, w, n, q, s, k);
  }
  void weight_code_counts(const T* w, size_t n, kernels::WeightQuant q, kernels::QuantScale s,
                          int64_t counts[3]) override {
    b_.weight_code_counts(w, n, q, s, counts);
  }
  void rope(T* x, const T* c, const T* s, int B, int Tn, int H, int hd, bool inv) override {
    b_.rope(x, c, s, B, Tn, H, hd, inv);
  }
  void attention_forward(T* y, T* lse, const T* q, const T* k, const T* v, int B, int Tn, int H, int KV,
                         int hd) override {
    b_.attention_forward(y, lse, q, k, v, B, Tn, H, KV, hd);
  }
  void attention_backward(T* dq, T* dk, T* dv, const T* dy, const T* q, const T* k, const T* v, const T* y,
                          const T* lse, int B, int Tn, int H, int KV, int hd) override {
    b_.attention_backward(dq, dk, dv, dy, q, k, v, y, lse, B, Tn, H, KV, hd);
  }
  void gated_act_forward(T* out, const T* g, const T* u, size_t n, kernels::GatedAct a) override {
    b_.gated_act_forward(out, g, u, n, a);
  }
  void gated_act_backward(T* dg, T* du, const T* dout, const T* g, const T* u, size_t n,
                          kernels::GatedAct a) override {
    b_.gated_act_backward(dg, du, dout, g, u, n, a);
  }
  void residual_forward(T* out, const T* x, const T* y, T scale, float p, uint64_t seed, size_t n) override {
    b_.residual_forward(out, x, y, scale, p, seed, n);
  }
  void residual_backward(T* dy, const T* dout, T scale, float p, uint64_t seed, size_t n) override {
    b_.residual_backward(dy, dout, scale, p, seed, n);
  }
  double cross_entropy(T* logits, T* losses, const int32_t* tgt, int N, int V, T dscale, bool want_grad) override {
    return b_.cross_entropy(logits, losses, tgt, N, V, dscale, want_grad);
  }
  // The integer Hard-phase forward is forwarded too, so the f32 side runs what the trainer runs.
  bool pack_ternary(std::unique_ptr<kernels::PackedTernary>& packed, const T* w_eff, int out, int in,
                    float g) override {
    return b_.pack_ternary(packed, w_eff, out, in, g);
  }
  void ternary_linear_forward(T* y, const T* xq, int N, const kernels::PackedTernary& packed) override {
    b_.ternary_linear_forward(y, xq, N, packed);
  }

 protected:
  // Called after every int8 activation quantization: out holds the dequantized codes of x.
  virtual void on_act_quant(T* out, const T* x, int N, int C) {}

 private:
  kernels::Ops<T>& b_;
};

// The per-row scale of act_quant_int8 (kernels.h), in T.
template <typename T>
T act_scale(const T* row, int C) {
  T m = 0;
  for (int c = 0; c < C; ++c) m = std::max(m, std::abs(row[c]));
  return T(127) / std::max(m, T(1e-5));
}

class CodeRecorder : public ForwardingOps<float> {
 public:
  using ForwardingOps<float>::ForwardingOps;
  std::deque<std::vector<int16_t>> codes;  // one entry per quantization call, in call order

 protected:
  void on_act_quant(float* out, const float* x, int N, int C) override {
    std::vector<int16_t> v((size_t)N * C);
    for (int n = 0; n < N; ++n) {
      const float s = act_scale(x + (size_t)n * C, C);
      for (int c = 0; c < C; ++c) v[(size_t)n * C + c] = (int16_t)std::lrint(out[(size_t)n * C + c] * s);
    }
    codes.push_back(std::move(v));
  }
};

class CodeReplayer : public ForwardingOps<double> {
 public:
  CodeReplayer(kernels::Ops<double>& base, CodeRecorder& rec, double tie_width)
      : ForwardingOps<double>(base), rec_(rec), tie_width_(tie_width) {}
  int64_t compared = 0, tie_flips = 0, wrong = 0, calls_without_record = 0;
  double widest_tie = 0;  // largest distance from k + 0.5 of a flip that counted as a tie

 protected:
  void on_act_quant(double* out, const double* x, int N, int C) override {
    if (rec_.codes.empty() || rec_.codes.front().size() != (size_t)N * C) {
      ++calls_without_record;
      return;
    }
    const std::vector<int16_t> fast = std::move(rec_.codes.front());
    rec_.codes.pop_front();
    for (int n = 0; n < N; ++n) {
      const double s = act_scale(x + (size_t)n * C, C);
      for (int c = 0; c < C; ++c) {
        const size_t i = (size_t)n * C + c;
        const long mine = std::lrint(out[i] * s);
        ++compared;
        if (mine == fast[i]) continue;
        const double tie_distance = std::abs(x[i] * s - (double)std::min<long>(mine, fast[i]) - 0.5);
        if (std::abs(mine - fast[i]) == 1 && tie_distance <= tie_width_) {
          ++tie_flips;
          widest_tie = std::max(widest_tie, tie_distance);
        } else {
          ++wrong;
        }
        out[i] = (double)fast[i] / s;
      }
    }
  }

 private:
  CodeRecorder& rec_;
  double tie_width_;
};

}  // namespace onebit::model::testing
