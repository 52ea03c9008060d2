#include "onebit/infer/matmul.h"

#include <algorithm>
#include <cmath>

#include "onebit/core/error.h"
#include "onebit/infer/kernels/gemm_amx.h"
#include "onebit/kernels/cpu/thread_pool.h"

namespace onebit::infer {

void QuantizedActs::reserve(int rows, int cols) {
  const size_t stride = (size_t)(cols + kActPad - 1) / kActPad * kActPad;
  if (rows <= cap_rows_ && stride <= stride_) return;
  stride_ = std::max(stride_, stride);
  cap_rows_ = std::max(cap_rows_, rows);
  q_.assign((size_t)cap_rows_ * stride_ + 64, 0);  // + 64: 512-bit loads of a last partial block stay inside
  sum_.assign(cap_rows_, 0);
  inv_s_.assign(cap_rows_, 0.0f);
}

// Round to nearest, ties to even, of |v| <= 2^22, as nearbyint does in the default rounding mode:
// adding 1.5 * 2^23 leaves no fraction bits, so the FPU's own rounding does the work. Unlike
// nearbyint (a libm call per value on baseline x86-64) it vectorizes; the compiler may not fold the
// two operations without -ffast-math, which onebit never uses.
static inline float round_even_small(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

void QuantizedActs::quantize(const float* x, int rows, int cols, size_t ldx) {
  OB_CHECK(rows <= cap_rows_ && (size_t)cols <= stride_, "QuantizedActs: ", rows, "x", cols,
           " exceeds the reserved ", cap_rows_, "x", stride_);
  rows_ = rows;
  // Rows are independent: prefill's spread over the pool (at least ~16K values a chunk), decode's one
  // row on the calling thread, where it is serial work between two parallel GEMVs: hence loops the
  // compiler vectorizes (max is exact in any order; the rounding as above).
  kernels::cpu::parallel_ranges(rows, std::max(1, 16384 / std::max(cols, 1)), [&](int64_t r0, int64_t r1) {
    for (int r = (int)r0; r < (int)r1; ++r) quantize_row(x + (size_t)r * ldx, cols, r, rows);
  });
}

// Locals only: the int8 stores could alias anything reached through a pointer or reference (a captured
// `cols` included), which keeps the compiler from vectorizing.
void QuantizedActs::quantize_row(const float* __restrict xr, const int cols, const int r, const int rows) {
  int8_t* __restrict q = q_.data() + (size_t)r * stride_;
  constexpr int kLanes = 16;
  float lane[kLanes] = {};
  int c = 0;
  for (; c + kLanes <= cols; c += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] = std::max(lane[j], std::abs(xr[c + j]));
  float m = 0.0f;
  for (; c < cols; ++c) m = std::max(m, std::abs(xr[c]));
  for (int j = 0; j < kLanes; ++j) m = std::max(m, lane[j]);
  // Finite weights can still overflow f32 on the way here; a NaN has no integer code. (max() drops a
  // NaN operand in one order only, so the codes' loop checks for one too.)
  if (!std::isfinite(m)) fail("an activation overflowed f32 (row ", r, " of ", rows, "): the weights are out of range");
  const float s = 127.0f / std::max(m, 1e-5f);
  // |x * s| <= 127 (+ rounding): inside round_even_small's range.
  int32_t sum = 0, nan = 0;
  for (int i = 0; i < cols; ++i) {
    const float v = xr[i] * s;
    nan |= v != v;
    const int iv = (int)std::min(std::max(round_even_small(v), -128.0f), 127.0f);
    q[i] = (int8_t)iv;
    sum += iv;
  }
  if (nan) fail("an activation is NaN (row ", r, " of ", rows, "): the weights are out of range");
  std::fill(q + cols, q + stride_, (int8_t)0);
  sum_[r] = sum;
  inv_s_[r] = 1.0f / s;
}

namespace {

DotFn int_kernel(const DotKernels& k, PackedFormat f) {
  switch (f) {
    case PackedFormat::Ternary2:
      return k.ternary2;
    case PackedFormat::Ternary1_6:
      return k.ternary1_6;
    case PackedFormat::Binary1:
      return k.binary1;
    case PackedFormat::Q6:
      return k.q6;
    default:
      return k.int8;
  }
}

// Weight rows per tile: a tile's packed rows stay in L2 while every group of activation rows passes
// over them.
constexpr int kTileRows = 64;

// Only for the 2-bit layout: on the EPYC (Zen 5) dev VM an int8 row streamed alone reads at ~28 GB/s,
// four int8 rows side by side at ~9 (the hardware prefetcher follows one stream per row), so the
// 8-bit head keeps the one-row kernel.
Dot4RowsFn four_row_kernel(const DotKernels& k, PackedFormat f) {
  return f == PackedFormat::Ternary2 ? k.ternary2_4rows : nullptr;
}

// Decode (one token) where the path has a four-row kernel: rows go in groups of four, and the pool's
// chunks are whole groups, so only the matrix's last rows (rows % 4) take the one-row kernel.
void gemv_4rows(const PackedMatrix& W, const QuantizedActs& xq, float* y, Dot4RowsFn four, DotFn dot) {
  const int nblocks = W.padded_cols / block_codes(W.format);
  const int64_t groups = (W.rows + 3) / 4;
  const float xs = xq.inv_scale(0);
  const int32_t xsum = xq.sums()[0];
  kernels::cpu::parallel_ranges(groups, 8, [&](int64_t g0, int64_t g1) {
    int32_t acc[4];
    for (int64_t g = g0; g < g1; ++g) {
      const int r = (int)g * 4;
      if (r + 4 <= W.rows) {
        four(W.row(r), W.row_bytes, nblocks, xq.row(0), xsum, acc);
        for (int j = 0; j < 4; ++j) y[r + j] = (float)acc[j] * (W.scale_of(r + j) * xs);
      } else {
        for (int rr = r; rr < W.rows; ++rr) {
          dot(W.row(rr), nblocks, xq.row(0), xq.stride(), xq.sums(), 1, acc);
          y[rr] = (float)acc[0] * (W.scale_of(rr) * xs);
        }
      }
    }
  });
}

#if defined(__x86_64__)
// Products of at least this many tokens go to the AMX tile units (a pass takes 32 tokens; below 16 the
// VNNI kernels' 8-token groups waste less).
constexpr int kAmxMinTokens = 16;

amx::Codes amx_codes(PackedFormat f) {
  switch (f) {
    case PackedFormat::Ternary2:
      return amx::Codes::Ternary2;
    case PackedFormat::Ternary1_6:
      return amx::Codes::Ternary1_6;
    case PackedFormat::Binary1:
      return amx::Codes::Binary1;
    case PackedFormat::Q6:
      return amx::Codes::Q6;
    default:
      return amx::Codes::Int8;
  }
}

// Prefill on AMX: the tokens re-laid out once, then each pool chunk decodes 32 weight rows at a time
// and multiplies them with every token. Scratch grows per thread and is kept (no allocation per call
// once the largest shape has run); the scaling is the other paths' own expression, so the floats are
// bitwise theirs.
void matmul_amx(const PackedMatrix& W, const QuantizedActs& xq, int N, float* y, size_t ldy) {
  const int k64 = (W.padded_cols + 63) / 64 * 64;  // <= xq.stride(): rows are padded to kActPad (64 | 1280)
  const int npad = (N + amx::kTokens - 1) / amx::kTokens * amx::kTokens;
  const int nblocks = W.padded_cols / block_codes(W.format);
  const amx::Codes codes = amx_codes(W.format);
  static thread_local std::vector<int8_t> xv;
  if (xv.size() < (size_t)k64 * npad) xv.resize((size_t)k64 * npad);
  int8_t* xvp = xv.data();
  kernels::cpu::parallel_ranges(npad, 8, [&](int64_t n0, int64_t n1) {
    amx::pack_acts(xq.row(0), xq.stride(), N, npad, k64, xvp, (int)n0, (int)n1);
  });
  const int64_t tiles = (W.rows + amx::kRows - 1) / amx::kRows;
  kernels::cpu::parallel_ranges(tiles, 1, [&](int64_t t0, int64_t t1) {
    static thread_local std::vector<int8_t> wdec;
    static thread_local std::vector<int32_t> acc;
    if (wdec.size() < (size_t)amx::kRows * k64) wdec.resize((size_t)amx::kRows * k64);
    if (acc.size() < (size_t)amx::kRows * npad) acc.resize((size_t)amx::kRows * npad);
    for (int64_t t = t0; t < t1; ++t) {
      const int r0 = (int)t * amx::kRows, nrows = std::min(amx::kRows, W.rows - r0);
      amx::decode_rows(codes, W.row(r0), W.row_bytes, nblocks, nrows, k64, wdec.data());
      amx::tile_gemm(wdec.data(), k64, xvp, npad, acc.data());
      for (int r = 0; r < nrows; ++r) {
        const float ws = W.scale_of(r0 + r);
        const int32_t* a = acc.data() + (size_t)r * npad;
        for (int n = 0; n < N; ++n) y[(size_t)n * ldy + r0 + r] = (float)a[n] * (ws * xq.inv_scale(n));
      }
    }
  });
}
#endif

}  // namespace

void matmul(const PackedMatrix& W, const float* x, size_t ldx, const QuantizedActs* xq, int N, float* y, size_t ldy,
            const DotKernels& k) {
  if (N <= 0) return;
  const bool quantized = takes_int8_input(W.format);
  OB_CHECK(!quantized || (xq && xq->rows() >= N && xq->stride() >= (size_t)W.padded_cols),
           "matmul: ", to_string(W.format), " weights need quantized activations covering ", N, "x", W.padded_cols);
  const DotFn dot = quantized ? int_kernel(k, W.format) : nullptr;
#if defined(__x86_64__)
  if (quantized && k.path == KernelPath::Amx && N >= kAmxMinTokens) return matmul_amx(W, *xq, N, y, ldy);
#endif
  if (N == 1 && quantized) {
    if (Dot4RowsFn four = four_row_kernel(k, W.format)) return gemv_4rows(W, *xq, y, four, dot);
  }
  const int nblocks = quantized ? W.padded_cols / block_codes(W.format) : 0;
  // At least 16 rows per chunk in decode; GEMMs split into more, smaller chunks of rows.
  kernels::cpu::parallel_ranges(W.rows, N == 1 ? 16 : 8, [&](int64_t r0, int64_t r1) {
    int32_t acc[8];
    float accf[4];
    for (int64_t t0 = r0; t0 < r1; t0 += kTileRows) {
      const int64_t t1 = std::min(r1, t0 + kTileRows);
      // Integer dots take up to max_rows tokens per weight decode, the f32/bf16 dots 4.
      const int group = quantized ? k.max_rows : 4;
      for (int n0 = 0; n0 < N; n0 += group) {
        const int nx = std::min(group, N - n0);
        for (int64_t r = t0; r < t1; ++r) {
          if (quantized) {
            dot(W.row((int)r), nblocks, xq->row(n0), xq->stride(), xq->sums() + n0, nx, acc);
            const float ws = W.scale_of((int)r);
            for (int j = 0; j < nx; ++j) y[(size_t)(n0 + j) * ldy + r] = (float)acc[j] * (ws * xq->inv_scale(n0 + j));
          } else {
            if (W.format == PackedFormat::F32)
              k.f32(reinterpret_cast<const float*>(W.row((int)r)), W.cols, x + (size_t)n0 * ldx, ldx, nx, accf);
            else
              k.bf16(reinterpret_cast<const uint16_t*>(W.row((int)r)), W.cols, x + (size_t)n0 * ldx, ldx, nx, accf);
            for (int j = 0; j < nx; ++j) y[(size_t)(n0 + j) * ldy + r] = accf[j];
          }
        }
      }
    }
  });
}

}  // namespace onebit::infer
