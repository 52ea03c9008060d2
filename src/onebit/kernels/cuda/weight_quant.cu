// Weight quantization: the per-tensor scale as a deterministic two-stage reduction (fixed per-block
// partials in f64, then every block of the quantize pass folds the partials in the same order), and
// the quantize + bf16 cast in one pass that also counts the hard codes. Numerics: reference.h
// quantize_one in f32, then rounded to bf16 (the effective weight the matmuls see).
#include <algorithm>

#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxPartials = 1024;

enum class Reduce { AbsSum, Sum, AbsMax, AbsDev };

// partial[blockIdx.x] = this block's share (grid-stride) of the reduction; AbsDev needs the center,
// folded from `sums` (the Sum partials) first.
template <Reduce R>
__global__ void partials_kernel(double* partial, const float* w, size_t n, const double* sums, int nsums) {
  __shared__ double sh[32];
  float center = 0.0f;
  if constexpr (R == Reduce::AbsDev) {
    double s = 0;
    for (int i = threadIdx.x; i < nsums; i += blockDim.x) s += sums[i];
    center = (float)(block_sum(s, sh) / (double)n);
  }
  double acc = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float x = w[i];
    if constexpr (R == Reduce::AbsSum) acc += fabs((double)x);
    if constexpr (R == Reduce::Sum) acc += (double)x;
    if constexpr (R == Reduce::AbsMax) acc = fmax(acc, fabs((double)x));
    if constexpr (R == Reduce::AbsDev) acc += fabs((double)x - (double)center);
  }
  const double total = R == Reduce::AbsMax ? block_max(acc, sh) : block_sum(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

__device__ float quantize_one(float w, WeightQuant q, QuantScale s, float k) {
  switch (q) {
    case WeightQuant::None:
    case WeightQuant::BF16:
      return w;  // the bf16 store rounds
    case WeightQuant::Int8: {
      const float inv = 127.0f / fmaxf(s.scale, 1e-5f);
      return fminf(fmaxf(rintf(__fmul_rn(w, inv)), -127.0f), 127.0f) / inv;
    }
    case WeightQuant::Ternary: {
      const float g = s.scale, x = w / g;
      if (k > 0)
        return __fmul_rn(g, 0.5f) * (tanhf(k * (x - 0.5f)) + tanhf(k * (x + 0.5f)));
      return g * fminf(fmaxf(rintf(x), -1.0f), 1.0f);
    }
    case WeightQuant::Binary: {
      const float b = s.scale, d = w - s.center;
      if (k > 0) return b * tanhf(__fmul_rn(k, d) / fmaxf(b, 1e-8f));
      return d >= 0.0f ? b : -b;
    }
  }
  return w;
}

// Folds the partials into the scale (every block identically), block 0 publishes it, then
// quantizes a grid-stride share and adds its code counts.
__global__ void quantize_kernel(__nv_bfloat16* out, QuantScale* scale_out, unsigned long long* counts,
                                const float* w, size_t n, WeightQuant q, float k, const double* p0, const double* p1,
                                int np) {
  __shared__ double sh[32];
  __shared__ unsigned long long cnt[3];
  QuantScale s;
  if (q == WeightQuant::Ternary || q == WeightQuant::Binary || q == WeightQuant::Int8) {
    double a = 0, b = 0;
    for (int i = threadIdx.x; i < np; i += blockDim.x) {
      a = q == WeightQuant::Int8 ? fmax(a, p0[i]) : a + p0[i];
      if (q == WeightQuant::Binary) b += p1[i];
    }
    a = q == WeightQuant::Int8 ? block_max(a, sh) : block_sum(a, sh);
    if (q == WeightQuant::Binary) b = block_sum(b, sh);
    if (q == WeightQuant::Ternary) s.scale = (float)(a / (double)n + 1e-5);
    if (q == WeightQuant::Binary) s = QuantScale{(float)(a / (double)n), (float)(b / (double)n)};
    if (q == WeightQuant::Int8) s.scale = (float)a;
  }
  if (blockIdx.x == 0 && threadIdx.x == 0 && scale_out) *scale_out = s;
  if (threadIdx.x < 3) cnt[threadIdx.x] = 0;
  __syncthreads();
  unsigned c0 = 0, c1 = 0, c2 = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float x = w[i];
    out[i] = __float2bfloat16_rn(quantize_one(x, q, s, k));
    if (counts) {
      int code = 0;
      if (q == WeightQuant::Ternary) code = (int)fminf(fmaxf(rintf(x / s.scale), -1.0f), 1.0f);
      if (q == WeightQuant::Binary) code = x - s.center >= 0.0f ? 1 : -1;
      c0 += code == -1;
      c1 += code == 0;
      c2 += code == 1;
    }
  }
  if (counts) {
    c0 = warp_sum(c0);
    c1 = warp_sum(c1);
    c2 = warp_sum(c2);
    if ((threadIdx.x & 31) == 0) {
      atomicAdd(&cnt[0], (unsigned long long)c0);
      atomicAdd(&cnt[1], (unsigned long long)c1);
      atomicAdd(&cnt[2], (unsigned long long)c2);
    }
    __syncthreads();
    if (threadIdx.x < 3 && cnt[threadIdx.x]) atomicAdd(&counts[threadIdx.x], cnt[threadIdx.x]);
  }
}

}  // namespace

void weight_quantize(Context& ctx, bf16* out, QuantScale* scale, int64_t* counts, const float* w, size_t n,
                     WeightQuant q, float soft_k) {
  OB_CHECK(n > 0, "weight_quantize: empty tensor");
  const bool counted = q == WeightQuant::Ternary || q == WeightQuant::Binary;
  const int np = (int)std::min<size_t>(kMaxPartials, (n + kThreads * 4 - 1) / (kThreads * 4));
  auto* partials = static_cast<double*>(ctx.scratch(sizeof(double) * 2 * kMaxPartials));
  double* p0 = partials;
  double* p1 = partials + kMaxPartials;
  cudaStream_t st = stream_of(ctx);
  if (q == WeightQuant::Ternary) partials_kernel<Reduce::AbsSum><<<np, kThreads, 0, st>>>(p0, w, n, nullptr, 0);
  if (q == WeightQuant::Int8) partials_kernel<Reduce::AbsMax><<<np, kThreads, 0, st>>>(p0, w, n, nullptr, 0);
  if (q == WeightQuant::Binary) {
    partials_kernel<Reduce::Sum><<<np, kThreads, 0, st>>>(p0, w, n, nullptr, 0);
    partials_kernel<Reduce::AbsDev><<<np, kThreads, 0, st>>>(p1, w, n, p0, np);
  }
  const unsigned grid = std::min<unsigned>(blocks_for(n, kThreads), 132 * 16);
  quantize_kernel<<<grid, kThreads, 0, st>>>(dev(out), scale, counted ? reinterpret_cast<unsigned long long*>(counts) : nullptr,
                                             w, n, q, soft_k, p0, p1, np);
  check_last_launch("weight_quantize");
}

}  // namespace onebit::kernels::cuda
