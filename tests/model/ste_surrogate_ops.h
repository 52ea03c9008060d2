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

#include "forwarding_ops.h"
#include "onebit/kernels/kernels.h"

namespace onebit::model::testing {

template <typename T>
class SteSurrogateOps final : public kernels::testing::ForwardingOps<T> {
  using Base = kernels::testing::ForwardingOps<T>;

 public:
  explicit SteSurrogateOps(kernels::Ops<T>& inner) : Base(inner), in_(inner) {}
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
    Base::act_quant_int8(out, x, N, C);
    if (recording_) keep(acts_, out, out, x, n);
  }
  void weight_quantize(T* out, const T* w, size_t n, kernels::WeightQuant q, const kernels::QuantScale* s,
                       float soft_k) override {
    if (surrogate_) return apply(weights_, out, out, w, n, "a weight");
    Base::weight_quantize(out, w, n, q, s, soft_k);
    if (recording_) keep(weights_, out, out, w, n);
  }
  // The fused norm + quantization goes through act_quant_int8 above.
  void rmsnorm_forward(T* out, T* out_q, T* rstd, const T* x, const T* w, int N, int C, float eps) override {
    Base::rmsnorm_forward(out, nullptr, rstd, x, w, N, C, eps);
    if (out_q) act_quant_int8(out_q, out, N, C);
  }

  // No integer path: the surrogate's inputs are not int8 codes. Everything else is the inner backend's.
  const char* name() const override { return "ste-surrogate"; }
  bool pack_ternary(std::unique_ptr<kernels::PackedTernary>&, const T*, int, int, const kernels::QuantScale*) override {
    return false;
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
