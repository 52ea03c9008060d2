// Weight quantizers (per tensor): scale reductions in double from per-chunk partials combined in
// chunk order (reproducible), then one vectorized elementwise pass.
#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "onebit/kernels/cpu/fast.h"
#include "onebit/kernels/cpu/thread_pool.h"
#include "onebit/kernels/cpu/vec_math.h"

namespace onebit::kernels::cpu {
namespace {

enum class Red { SumAbs, Sum, SumAbsDev, MaxAbs };

double reduce(const float* w, size_t n, Red op, float center) {
  const int64_t chunks = num_chunks((int64_t)n, 4 * kMinChunk);
  std::vector<double> part((size_t)chunks, 0.0);
  parallel_for(chunks, [&](int64_t ch) {
    const size_t lo = n * ch / chunks, hi = n * (ch + 1) / chunks;
    double acc = 0.0;
    // Blocks of 256 summed in float (vectorized), blocks added in double: accurate and fast.
    for (size_t b = lo; b < hi; b += 256) {
      const size_t e = std::min(hi, b + 256);
      float s = 0.0f;
      if (op == Red::SumAbs) {
#pragma omp simd reduction(+ : s)
        for (size_t i = b; i < e; ++i) s += std::fabs(w[i]);
      } else if (op == Red::Sum) {
#pragma omp simd reduction(+ : s)
        for (size_t i = b; i < e; ++i) s += w[i];
      } else if (op == Red::SumAbsDev) {
#pragma omp simd reduction(+ : s)
        for (size_t i = b; i < e; ++i) s += std::fabs(w[i] - center);
      } else {
        s = vmax_abs(w + b, e - b, s);
      }
      acc = op == Red::MaxAbs ? std::max(acc, (double)s) : acc + s;
    }
    part[ch] = acc;
  });
  double r = 0.0;
  for (double p : part) r = op == Red::MaxAbs ? std::max(r, p) : r + p;
  return r;
}

}  // namespace

QuantScale weight_quant_scale(const float* w, size_t n, WeightQuant q) {
  QuantScale s;
  if (n == 0) return s;
  if (q == WeightQuant::Ternary) {
    s.scale = (float)(reduce(w, n, Red::SumAbs, 0) / n + 1e-5);
  } else if (q == WeightQuant::Binary) {
    s.center = (float)(reduce(w, n, Red::Sum, 0) / n);
    s.scale = (float)(reduce(w, n, Red::SumAbsDev, s.center) / n);
  } else if (q == WeightQuant::Int8) {
    s.scale = (float)reduce(w, n, Red::MaxAbs, 0);
  }
  return s;
}

QuantScale ternary_scale_clamped(const float* w, size_t n) {
  QuantScale s;
  if (n == 0) return s;
  s.scale = (float)std::max(reduce(w, n, Red::SumAbs, 0) / n, 1e-5);
  return s;
}

void weight_quantize(float* out, const float* w, size_t n, WeightQuant q, QuantScale s, float k) {
  parallel_ranges((int64_t)n, kMinChunk, [&](int64_t lo, int64_t hi) {
    // Local copies: read through the closure's references, none of these loops vectorized.
    float* const op = out;
    const float* const wp = w;
    switch (q) {
      case WeightQuant::None:
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) op[i] = wp[i];
        return;
      case WeightQuant::BF16:
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
          uint32_t u = std::bit_cast<uint32_t>(wp[i]);
          u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
          op[i] = std::bit_cast<float>(u);
        }
        return;
      case WeightQuant::Int8: {
        const float inv = 127.0f / std::max(s.scale, 1e-5f);
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) op[i] = vround_clamp(wp[i] * inv, -127.0f, 127.0f) / inv;
        return;
      }
      case WeightQuant::Ternary: {
        const float g = s.scale;
        if (k > 0) {
#pragma omp simd
          for (int64_t i = lo; i < hi; ++i) {
            const float x = wp[i] / g;
            op[i] = g * 0.5f * (vtanh(k * (x - 0.5f)) + vtanh(k * (x + 0.5f)));
          }
        } else {
#pragma omp simd
          for (int64_t i = lo; i < hi; ++i) op[i] = g * vround_clamp(wp[i] / g, -1.0f, 1.0f);
        }
        return;
      }
      case WeightQuant::Binary: {
        const float b = s.scale, a = s.center;
        if (k > 0) {
          const float kb = k / std::max(b, 1e-8f);
#pragma omp simd
          for (int64_t i = lo; i < hi; ++i) op[i] = b * vtanh(kb * (wp[i] - a));
        } else {
#pragma omp simd
          for (int64_t i = lo; i < hi; ++i) op[i] = wp[i] - a >= 0.0f ? b : -b;
        }
        return;
      }
    }
  });
}

void weight_code_counts(const float* w, size_t n, WeightQuant q, QuantScale s, int64_t counts[3]) {
  if (q != WeightQuant::Ternary && q != WeightQuant::Binary) return;
  const int64_t chunks = num_chunks((int64_t)n, 4 * kMinChunk);
  std::vector<int64_t> part((size_t)chunks * 3, 0);
  parallel_for(chunks, [&](int64_t ch) {
    const int64_t lo = (int64_t)n * ch / chunks, hi = (int64_t)n * (ch + 1) / chunks;
    int64_t neg = 0, zero = 0, pos = 0;
    const float* const wp = w;  // a local copy: read through the closure, the loop does not vectorize
    const float g = s.scale, center = s.center;
    // Blocks with 32-bit counters and float compares vectorize (int64 counters of bools kept this loop scalar:
    // a division and a rounding per weight, 2% of a 25m training step). The code of c = clamp(roundeven(q))
    // is -1 exactly when q < -0.5 and +1 when q > 0.5 (roundeven(+-0.5) = 0); a NaN has no code, as before.
    for (int64_t b = lo; b < hi; b += 4096) {
      const int64_t e = std::min(hi, b + 4096);
      int bn = 0, bz = 0, bp = 0;
      if (q == WeightQuant::Ternary) {
#pragma omp simd reduction(+ : bn, bz, bp)
        for (int64_t i = b; i < e; ++i) {
          const float x = wp[i] / g;
          bn += x < -0.5f;
          bz += (x >= -0.5f) & (x <= 0.5f);
          bp += x > 0.5f;
        }
      } else {
#pragma omp simd reduction(+ : bn, bp)
        for (int64_t i = b; i < e; ++i) {
          const int p = wp[i] - center >= 0.0f;
          bp += p;
          bn += 1 - p;
        }
      }
      neg += bn;
      zero += bz;
      pos += bp;
    }
    part[ch * 3] = neg;
    part[ch * 3 + 1] = zero;
    part[ch * 3 + 2] = pos;
  });
  for (int64_t ch = 0; ch < chunks; ++ch)
    for (int i = 0; i < 3; ++i) counts[i] += part[ch * 3 + i];
}

}  // namespace onebit::kernels::cpu
