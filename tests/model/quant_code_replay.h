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

#include "forwarding_ops.h"
#include "onebit/kernels/kernels.h"

namespace onebit::model::testing {

// The per-row scale of act_quant_int8 (kernels.h), in T.
template <typename T>
T act_scale(const T* row, int C) {
  T m = 0;
  for (int c = 0; c < C; ++c) m = std::max(m, std::abs(row[c]));
  return T(127) / std::max(m, T(1e-5));
}

class CodeRecorder : public kernels::testing::ForwardingOps<float> {
 public:
  using kernels::testing::ForwardingOps<float>::ForwardingOps;
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

class CodeReplayer : public kernels::testing::ForwardingOps<double> {
 public:
  CodeReplayer(kernels::Ops<double>& base, CodeRecorder& rec, double tie_width)
      : kernels::testing::ForwardingOps<double>(base), rec_(rec), tie_width_(tie_width) {}
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
