// Weight quantization: the per-tensor scale as a deterministic two-stage reduction (fixed per-block
// partials in f64, then every block of the quantize pass folds the partials in the same order), and
// the quantize + bf16 cast in one pass that also counts the hard codes. Numerics: reference.h
// quantize_one in f32, then rounded to bf16 (the effective weight the matmuls see).
#include <algorithm>
#include <vector>

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

// Folds the partials into the scale (one block, a fixed order): the per-tensor QuantScale of w.
// clamped: the ternary scale as transformers' BitNet computes it, max(mean|W|, 1e-5).
__global__ void fold_scale_kernel(QuantScale* scale_out, size_t n, WeightQuant q, const double* p0, const double* p1,
                                  int np, bool clamped) {
  __shared__ double sh[32];
  QuantScale s;
  double a = 0, b = 0;
  for (int i = threadIdx.x; i < np; i += blockDim.x) {
    a = q == WeightQuant::Int8 ? fmax(a, p0[i]) : a + p0[i];
    if (q == WeightQuant::Binary) b += p1[i];
  }
  a = q == WeightQuant::Int8 ? block_max(a, sh) : block_sum(a, sh);
  if (q == WeightQuant::Binary) b = block_sum(b, sh);
  if (q == WeightQuant::Ternary) s.scale = clamped ? (float)fmax(a / (double)n, 1e-5) : (float)(a / (double)n + 1e-5);
  if (q == WeightQuant::Binary) s = QuantScale{(float)(a / (double)n), (float)(b / (double)n)};
  if (q == WeightQuant::Int8) s.scale = (float)a;
  if (threadIdx.x == 0) *scale_out = s;
}

__device__ int hard_code(float x, WeightQuant q, QuantScale s) {
  if (q == WeightQuant::Ternary) return (int)fminf(fmaxf(rintf(x / s.scale), -1.0f), 1.0f);
  if (q == WeightQuant::Binary) return x - s.center >= 0.0f ? 1 : -1;
  return 0;
}

// counts[0..2] += this block's share of the hard codes -1, 0, +1 (integer atomics: order-free, exact).
__device__ void add_counts(unsigned long long* counts, unsigned c0, unsigned c1, unsigned c2) {
  __shared__ unsigned long long cnt[3];
  if (threadIdx.x < 3) cnt[threadIdx.x] = 0;
  __syncthreads();
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

// out = quantize(w) at the scale in device memory (nullable for None/BF16); counts (nullable) as above.
__global__ void quantize_kernel(__nv_bfloat16* out, const QuantScale* scale, unsigned long long* counts,
                                const float* w, size_t n, WeightQuant q, float k) {
  const QuantScale s = scale ? *scale : QuantScale{};
  unsigned c0 = 0, c1 = 0, c2 = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float x = w[i];
    if (out) out[i] = __float2bfloat16_rn(quantize_one(x, q, s, k));
    if (counts) {
      const int code = hard_code(x, q, s);
      c0 += code == -1;
      c1 += code == 0;
      c2 += code == 1;
    }
  }
  if (counts) add_counts(counts, c0, c1, c2);
}

// ---- many tensors in three launches (weight_quantize_many): a model's weights are ~100 tensors of 0.6-2 M
// values, about a microsecond of bandwidth each, so a launch per tensor cost more than its pass. Each launch
// is one flat grid over every tensor's blocks (a block finds its tensor by run_of over the batch's
// first blocks): a 2D grid sized by the largest tensor left a third of the scale blocks and up to two thirds
// of the quantize blocks empty, and blocks of 4 weights a thread spent more time starting and reducing than
// loading (the whole pass ran at ~25% of the copy bandwidth). Now 16 weights a thread, four at a time where
// the weights are 16-byte aligned. The scale is the per-tensor path's up to the order of its f64 sum (exact
// for any real weights: their |w| span far fewer than 53 bits), the fold and the quantize are the same.

constexpr int kManyMax = 64;          // tensors per launch (descriptors in the kernel parameters)
constexpr int kManyPerThread = 16;    // weights per thread of a scale or quantize block
constexpr unsigned kFlagScale = 1, kFlagClamped = 2, kFlagCount = 4, kFlagVec = 8, kFlagVecIn = 16;

struct ManyDesc {
  const float* w;
  __nv_bfloat16* out;
  QuantScale* scale;
  unsigned long long n;
  float k;
  int np;  // scale partials (blocks of the partials launch)
  int nq;  // blocks of the quantize launch
  unsigned flags;
};
struct ManyBatch {
  ManyDesc d[kManyMax];
  int first_partial[kManyMax + 1];  // the partials grid's first block of each tensor; [count] = the grid
  int first_block[kManyMax + 1];    // the same for the quantize grid
  int count;
};

// Units of `per` consecutive weights (1 or 4) for thread t of block p of np: p * blockDim + t, then a
// stride of np * blockDim.
__global__ void many_partials_kernel(const __grid_constant__ ManyBatch b, double* partials) {
  __shared__ double sh[32];
  const int jt = run_of(b.first_partial, b.count, (int)blockIdx.x);
  const ManyDesc& j = b.d[jt];
  const int p = blockIdx.x - b.first_partial[jt];
  const size_t t0 = (size_t)p * blockDim.x + threadIdx.x, stride = (size_t)j.np * blockDim.x;
  double acc = 0;
  const size_t n4 = (j.flags & kFlagVecIn) ? j.n / 4 : 0;
#pragma unroll 4
  for (size_t i = t0; i < n4; i += stride) {
    const float4 x = reinterpret_cast<const float4*>(j.w)[i];
    acc += fabs((double)x.x);
    acc += fabs((double)x.y);
    acc += fabs((double)x.z);
    acc += fabs((double)x.w);
  }
  for (size_t i = 4 * n4 + t0; i < j.n; i += stride) acc += fabs((double)j.w[i]);
  const double total = block_sum(acc, sh);
  if (threadIdx.x == 0) partials[(size_t)jt * kMaxPartials + p] = total;
}

__global__ void many_fold_kernel(const __grid_constant__ ManyBatch b, const double* partials) {
  __shared__ double sh[32];
  const ManyDesc& j = b.d[blockIdx.x];
  if (!(j.flags & kFlagScale)) return;
  const double* p0 = partials + (size_t)blockIdx.x * kMaxPartials;
  double a = 0;
  for (int i = threadIdx.x; i < j.np; i += blockDim.x) a += p0[i];
  a = block_sum(a, sh);
  QuantScale s;
  s.scale = (j.flags & kFlagClamped) ? (float)fmax(a / (double)j.n, 1e-5) : (float)(a / (double)j.n + 1e-5);
  if (threadIdx.x == 0) *j.scale = s;
}

__global__ void many_quantize_kernel(const __grid_constant__ ManyBatch b, unsigned long long* counts, int ternary) {
  const int jt = run_of(b.first_block, b.count, (int)blockIdx.x);
  const ManyDesc& j = b.d[jt];
  const WeightQuant q = ternary ? WeightQuant::Ternary : WeightQuant::None;
  const QuantScale s = ternary ? *j.scale : QuantScale{};
  const bool count = counts && (j.flags & kFlagCount);
  unsigned c0 = 0, c1 = 0, c2 = 0;
  auto tally = [&](float x) {
    const int code = hard_code(x, q, s);
    c0 += code == -1;
    c1 += code == 0;
    c2 += code == 1;
  };
  const size_t t0 = (size_t)(blockIdx.x - b.first_block[jt]) * blockDim.x + threadIdx.x,
               stride = (size_t)j.nq * blockDim.x;
  // kFlagVec (w 16-byte, out 8-byte aligned): four weights a thread as one load and one store, then the n % 4
  // left element by element.
  const size_t n4 = (j.flags & kFlagVec) ? j.n / 4 : 0;
#pragma unroll 4
  for (size_t i = t0; i < n4; i += stride) {
    const float4 x = reinterpret_cast<const float4*>(j.w)[i];
    if (j.out) {
      const __nv_bfloat162 lo = __floats2bfloat162_rn(quantize_one(x.x, q, s, j.k), quantize_one(x.y, q, s, j.k));
      const __nv_bfloat162 hi = __floats2bfloat162_rn(quantize_one(x.z, q, s, j.k), quantize_one(x.w, q, s, j.k));
      uint2 u;
      u.x = *reinterpret_cast<const uint32_t*>(&lo), u.y = *reinterpret_cast<const uint32_t*>(&hi);
      reinterpret_cast<uint2*>(j.out)[i] = u;
    }
    if (count) tally(x.x), tally(x.y), tally(x.z), tally(x.w);
  }
  for (size_t i = 4 * n4 + t0; i < j.n; i += stride) {
    const float x = j.w[i];
    if (j.out) j.out[i] = __float2bfloat16_rn(quantize_one(x, q, s, j.k));
    if (count) tally(x);
  }
  if (count) add_counts(counts, c0, c1, c2);
}

__global__ void default_scale_kernel(QuantScale* s) { *s = QuantScale{}; }

bool has_scale(WeightQuant q) {
  return q == WeightQuant::Ternary || q == WeightQuant::Binary || q == WeightQuant::Int8;
}

unsigned quantize_grid(size_t n) { return std::min<unsigned>(blocks_for(n, kThreads), 132 * 16); }

}  // namespace

namespace {
void quant_scale(Context& ctx, QuantScale* scale, const float* w, size_t n, WeightQuant q, bool clamped);
}

void weight_quant_scale(Context& ctx, QuantScale* scale, const float* w, size_t n, WeightQuant q) {
  quant_scale(ctx, scale, w, n, q, false);
}

void ternary_scale_clamped(Context& ctx, QuantScale* scale, const float* w, size_t n) {
  quant_scale(ctx, scale, w, n, WeightQuant::Ternary, true);
}

namespace {
void quant_scale(Context& ctx, QuantScale* scale, const float* w, size_t n, WeightQuant q, bool clamped) {
  OB_CHECK(n > 0, "weight_quant_scale: empty tensor");
  cudaStream_t st = stream_of(ctx);
  if (!has_scale(q)) {  // None/BF16 have no scale; write the default so readers see defined values
    default_scale_kernel<<<1, 1, 0, st>>>(scale);
    check_last_launch("weight_quant_scale");
    return;
  }
  const int np = (int)std::min<size_t>(kMaxPartials, (n + kThreads * 4 - 1) / (kThreads * 4));
  auto* partials = static_cast<double*>(ctx.scratch(sizeof(double) * 2 * kMaxPartials));
  double* p0 = partials;
  double* p1 = partials + kMaxPartials;
  if (q == WeightQuant::Ternary) partials_kernel<Reduce::AbsSum><<<np, kThreads, 0, st>>>(p0, w, n, nullptr, 0);
  if (q == WeightQuant::Int8) partials_kernel<Reduce::AbsMax><<<np, kThreads, 0, st>>>(p0, w, n, nullptr, 0);
  if (q == WeightQuant::Binary) {
    partials_kernel<Reduce::Sum><<<np, kThreads, 0, st>>>(p0, w, n, nullptr, 0);
    partials_kernel<Reduce::AbsDev><<<np, kThreads, 0, st>>>(p1, w, n, p0, np);
  }
  fold_scale_kernel<<<1, kThreads, 0, st>>>(scale, n, q, p0, p1, np, clamped);
  check_last_launch("weight_quant_scale");
}
}  // namespace

void weight_quantize_scaled(Context& ctx, bf16* out, const QuantScale* scale, const float* w, size_t n,
                            WeightQuant q, float soft_k) {
  OB_CHECK(n > 0, "weight_quantize: empty tensor");
  OB_CHECK(scale || !has_scale(q), "weight_quantize: a quantized precision needs its scale");
  quantize_kernel<<<quantize_grid(n), kThreads, 0, stream_of(ctx)>>>(dev(out), has_scale(q) ? scale : nullptr,
                                                                       nullptr, w, n, q, soft_k);
  check_last_launch("weight_quantize");
}

void weight_code_counts(Context& ctx, int64_t* counts, const float* w, size_t n, WeightQuant q,
                        const QuantScale* scale) {
  if (q != WeightQuant::Ternary && q != WeightQuant::Binary) return;
  OB_CHECK(n > 0, "weight_code_counts: empty tensor");
  quantize_kernel<<<quantize_grid(n), kThreads, 0, stream_of(ctx)>>>(
      nullptr, scale, reinterpret_cast<unsigned long long*>(counts), w, n, q, 0.0f);
  check_last_launch("weight_code_counts");
}

void weight_quantize(Context& ctx, bf16* out, QuantScale* scale, int64_t* counts, const float* w, size_t n,
                     WeightQuant q, float soft_k) {
  OB_CHECK(n > 0, "weight_quantize: empty tensor");
  QuantScale* s = scale;
  if (!s && has_scale(q)) {  // the caller does not keep the scale: a slot after the partials
    auto* base = static_cast<char*>(ctx.scratch(sizeof(double) * 2 * kMaxPartials + sizeof(QuantScale)));
    s = reinterpret_cast<QuantScale*>(base + sizeof(double) * 2 * kMaxPartials);
  }
  if (has_scale(q) || scale) weight_quant_scale(ctx, s, w, n, q);  // None/BF16: the default scale, if kept
  const bool counted = counts && (q == WeightQuant::Ternary || q == WeightQuant::Binary);
  quantize_kernel<<<quantize_grid(n), kThreads, 0, stream_of(ctx)>>>(
      dev(out), has_scale(q) ? s : nullptr, counted ? reinterpret_cast<unsigned long long*>(counts) : nullptr, w, n,
      q, soft_k);
  check_last_launch("weight_quantize");
}

int many_fast_kind(const ManyQuantJob& j) {  // 1: ternary with its scale, 2: a plain cast, 0: neither
  if (j.q == WeightQuant::Ternary && j.with_scale) return 1;
  if (j.q == WeightQuant::None && !j.with_scale && j.out) return 2;
  return 0;
}

void weight_quantize_many(Context& ctx, const ManyQuantJob* jobs, size_t njobs, int64_t* counts) {
  cudaStream_t st = stream_of(ctx);
  auto* partials = static_cast<double*>(ctx.scratch(sizeof(double) * kManyMax * kMaxPartials));
  const size_t per_block = (size_t)kThreads * kManyPerThread;
  for (int kind = 1; kind <= 2; ++kind) {
    std::vector<const ManyQuantJob*> sel;
    for (size_t i = 0; i < njobs; ++i)
      if (many_fast_kind(jobs[i]) == kind) sel.push_back(&jobs[i]);
    for (size_t at = 0; at < sel.size(); at += kManyMax) {
      const int m = (int)std::min<size_t>(kManyMax, sel.size() - at);
      ManyBatch b{};
      b.count = m;
      for (int i = 0; i < m; ++i) {
        const ManyQuantJob& j = *sel[at + i];
        OB_CHECK(j.n > 0, "weight_quantize_many: empty tensor");
        ManyDesc& d = b.d[i];
        d.w = j.w;
        d.out = j.out ? dev(j.out) : nullptr;
        d.scale = j.scale;
        d.n = j.n;
        d.k = j.soft_k;
        const int blocks = (int)std::clamp<size_t>((j.n + per_block - 1) / per_block, 1, kMaxPartials);
        d.np = kind == 1 ? blocks : 0;
        d.nq = blocks;
        const bool vec_in = aligned16(j.w), vec = vec_in && reinterpret_cast<uintptr_t>(d.out) % 8 == 0;
        d.flags = (kind == 1 ? kFlagScale | kFlagCount : 0) | (j.clamped ? kFlagClamped : 0) | (vec ? kFlagVec : 0) |
                  (vec_in ? kFlagVecIn : 0);
        b.first_partial[i + 1] = b.first_partial[i] + d.np;
        b.first_block[i + 1] = b.first_block[i] + d.nq;
      }
      if (kind == 1) {
        many_partials_kernel<<<b.first_partial[m], kThreads, 0, st>>>(b, partials);
        many_fold_kernel<<<m, kThreads, 0, st>>>(b, partials);
      }
      many_quantize_kernel<<<b.first_block[m], kThreads, 0, st>>>(b, reinterpret_cast<unsigned long long*>(counts),
                                                                  kind == 1 ? 1 : 0);
      check_last_launch("weight_quantize_many");
    }
  }
}

}  // namespace onebit::kernels::cuda
