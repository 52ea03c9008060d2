#pragma once
// y = x · Wᵀ for a packed weight matrix: a GEMV for one token (decode) and a GEMM for a prompt
// chunk (prefill), spread over the CPU kernel thread pool by weight rows. Quantized formats take
// per-token absmax int8 activations (DESIGN.md "Numerics"); F32/BF16 take the f32 rows.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "onebit/infer/kernels/dot.h"
#include "onebit/infer/packed_weights.h"

namespace onebit::infer {

// Per-token absmax int8 rows: s = 127 / max(|x|, 1e-5), q = clamp(round(x * s), -128, 127), the
// effective value q / s. Rows are padded with zeros to kActPad; buffers grow only in reserve(), so
// quantizing a token allocates nothing.
class QuantizedActs {
 public:
  void reserve(int rows, int cols);
  // Quantizes rows x[r * ldx .. + cols] (reserve() must have covered rows and cols).
  void quantize(const float* x, int rows, int cols, size_t ldx);
  int rows() const { return rows_; }
  size_t stride() const { return stride_; }
  const int8_t* row(int r) const { return q_.data() + (size_t)r * stride_; }
  const int32_t* sums() const { return sum_.data(); }  // sum of each row's codes
  float inv_scale(int r) const { return inv_s_[r]; }  // 1 / s

 private:
  void quantize_row(const float* xr, int cols, int r, int rows);
  std::vector<int8_t> q_;
  std::vector<int32_t> sum_;
  std::vector<float> inv_s_;
  int rows_ = 0, cap_rows_ = 0;
  size_t stride_ = 0;
};

// y[n * ldy + r] = sum_c x[n, c] * W[r, c] for n < N, r < W.rows. `x` (f32, ldx) feeds F32/BF16
// matrices, `xq` (quantized from the same rows) the quantized formats.
void matmul(const PackedMatrix& W, const float* x, size_t ldx, const QuantizedActs* xq, int N, float* y, size_t ldy,
            const DotKernels& k);

}  // namespace onebit::infer
