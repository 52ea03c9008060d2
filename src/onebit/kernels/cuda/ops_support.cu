// The kernels CudaOps needs beyond the training kernels proper: the embedding lookup and its
// deterministic backward, parameter-side vector ops (axpy, the global gradient norm, the clip factor,
// AdamW over the ranges of a flat arena), bf16 scaling and the f64 loss accumulator.
// Numerics follow the CPU backends (kernels/cpu/fast_optim.cpp for AdamW, reference.h elsewhere).
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cmath>

#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr size_t kNormChunk = size_t{1} << 16;  // elements per norm partial: a fixed order for any n

__global__ void embedding_forward_kernel(__nv_bfloat16* out, const int32_t* tokens, const __nv_bfloat16* table,
                                         int C, int V) {
  const int n = blockIdx.x;
  const int tok = tokens[n];
  __nv_bfloat16* o = out + (size_t)n * C;
  if (tok < 0 || tok >= V) {  // the host checks ids before upload; poison rather than read out of bounds
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = __float2bfloat16_rn(NAN);
    return;
  }
  const __nv_bfloat16* row = table + (size_t)tok * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = row[c];
}

// The deterministic backward works on the token-sorted order (a stable sort keeps positions ascending
// within a run of equal tokens). Runs are cut into segments of kEmbSeg rows at fixed offsets from the
// run's start, one block each, so a frequent token (a space: ~15% of a text's tokens) no longer
// makes one block walk thousands of rows while the GPU idles. A run of one segment adds its sum to
// the table row at once; a longer run's segment sums go to partial[first sorted index of the
// segment] and are added in segment order by embedding_fold_kernel. No float atomics: the same bits
// on every run.
constexpr int kEmbSeg = 64;

__global__ void embedding_segment_kernel(float* dtable, float* partial, const __nv_bfloat16* dout,
                                         const int32_t* keys, const int32_t* pos, int N, int C) {
  const int i = blockIdx.x;
  const int key = keys[i];
  const int start = run_bound(keys, N, key, false);
  if ((i - start) % kEmbSeg != 0) return;  // not the first row of a segment
  const int end = run_bound(keys, N, key, true), seg_end = min(end, i + kEmbSeg);
  const bool single = end - start <= kEmbSeg;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = 0.0f;
    for (int j = i; j < seg_end; ++j) acc += __bfloat162float(dout[(size_t)pos[j] * C + c]);
    if (single) dtable[(size_t)key * C + c] += acc;
    else partial[(size_t)i * C + c] = acc;
  }
}

__global__ void embedding_fold_kernel(float* dtable, const float* partial, const int32_t* keys, int N, int C) {
  const int i = blockIdx.x;
  const int key = keys[i];
  if (i > 0 && keys[i - 1] == key) return;  // not the start of a run
  const int end = run_bound(keys, N, key, true);
  if (end - i <= kEmbSeg) return;  // added by its only segment
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = 0.0f;
    for (int j = i; j < end; j += kEmbSeg) acc += partial[(size_t)j * C + c];
    dtable[(size_t)key * C + c] += acc;
  }
}

__global__ void iota_kernel(int32_t* p, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = i;
}

__global__ void axpy_kernel(float* y, float a, const float* x, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    y[i] += a * x[i];
}

__global__ void scale_bf16_kernel(__nv_bfloat16* y, float a, const __nv_bfloat16* x, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    y[i] = __float2bfloat16_rn(a * __bfloat162float(x[i]));
}

// vec (g 16-byte aligned; kNormChunk is a multiple of 4): four values a thread a load, the chunk's n % 4 left
// element by element; with one scalar load a thread in flight this pass ran at ~50% of the bandwidth. Either way
// a fixed order for a given n and alignment: the same norm on every run.
__global__ void sq_partial_kernel(double* partial, const float* g, size_t n, int vec) {
  __shared__ double sh[32];
  const size_t lo = blockIdx.x * kNormChunk, hi = min(n, lo + kNormChunk);
  double acc = 0;
  const size_t body = vec ? (hi - lo) / 4 * 4 : 0;
  for (size_t i = lo / 4 + threadIdx.x; i < (lo + body) / 4; i += blockDim.x) {
    const float4 v = reinterpret_cast<const float4*>(g)[i];
    acc += (double)v.x * v.x + (double)v.y * v.y + (double)v.z * v.z + (double)v.w * v.w;
  }
  for (size_t i = lo + body + threadIdx.x; i < hi; i += blockDim.x) {
    const double v = g[i];
    acc += v * v;
  }
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void fold_sum_kernel(double* out, const double* partial, int n) {
  __shared__ double sh[32];
  double acc = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) *out = acc;
}

// torch's clip_grad_norm_ factor, exactly 1 when nothing is clipped (kernels.h clip_factor).
__global__ void clip_factor_kernel(float* factor, const double* norm_sq, double max_norm) {
  const double norm = sqrt(*norm_sq);
  float f = 1.0f;
  if (max_norm > 0.0 && isfinite(norm) && norm > max_norm) f = (float)(max_norm / (norm + 1e-6));
  *factor = f;
}

struct AdamWConsts {
  float b1, b2, eps, step_size, inv_sqrt_bc2, decay;
};

// The CPU backend's per-element formula (fast_optim.cpp adamw_step), term for term.
__device__ inline void adamw_one(float& p, float g, float& m, float& v, float c, const AdamWConsts& k) {
  const float gi = __fmul_rn(g, c);
  m = __fadd_rn(__fmul_rn(k.b1, m), __fmul_rn(1.0f - k.b1, gi));
  v = __fadd_rn(__fmul_rn(k.b2, v), __fmul_rn(__fmul_rn(1.0f - k.b2, gi), gi));
  const float denom = __fadd_rn(__fmul_rn(__fsqrt_rn(v), k.inv_sqrt_bc2), k.eps);
  p = __fsub_rn(__fmul_rn(p, k.decay), __fdiv_rn(__fmul_rn(k.step_size, m), denom));
}

// Every range of the arena in one launch (a model has ~10 ranges a layer: a launch per range, each with its own tail,
// ran the 125m update at 1.35 ms, ~65% of the bandwidth, with ~0.5 ms of host time in launches; before that, a scalar
// kernel reached half the bandwidth: 16-byte accesses matter here). A launch takes up to kAdamWSpans spans (runs of
// adjacent ranges with one decay factor) as kernel parameters. Work is counted in units of four elements: unit u of the
// launch belongs to span i where first_unit[i] <= u < first_unit[i + 1] (run_of over a copy in shared memory); a span
// whose four pointers are 16-byte aligned moves its full units as float4, anything else (a misaligned span, the last
// unit's 1-3 leftover elements) element by element. The same adamw_one per element as the per-range kernels, so the
// same bits.
constexpr int kAdamWSpans = 96;
struct AdamWSpans {
  int count;
  unsigned long long first_unit[kAdamWSpans + 1];
  unsigned long long offset[kAdamWSpans], numel[kAdamWSpans];
  float decay[kAdamWSpans];
  unsigned char vec[kAdamWSpans];
};
static_assert(sizeof(AdamWSpans) + 64 <= 4096, "a launch's parameters stay within the classic 4 KB");

__global__ void __launch_bounds__(kThreads) adamw_spans_kernel(float* p, const float* g, float* m, float* v,
                                                               const float* clip, AdamWConsts k,
                                                               const __grid_constant__ AdamWSpans s) {
  __shared__ unsigned long long first[kAdamWSpans + 1];
  for (int i = threadIdx.x; i <= s.count; i += blockDim.x) first[i] = s.first_unit[i];
  __syncthreads();
  const float c = clip ? *clip : 1.0f;
  const unsigned long long units = first[s.count];
  for (unsigned long long u = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; u < units;
       u += (unsigned long long)gridDim.x * blockDim.x) {
    const int lo = run_of(first, s.count, u);  // u's span
    const unsigned long long local = 4 * (u - first[lo]);
    const size_t e = s.offset[lo] + local;
    AdamWConsts kk = k;
    kk.decay = s.decay[lo];
    const unsigned long long left = s.numel[lo] - local;
    if (left >= 4 && s.vec[lo]) {
      float4 pi = *reinterpret_cast<float4*>(p + e), mi = *reinterpret_cast<float4*>(m + e),
             vi = *reinterpret_cast<float4*>(v + e);
      const float4 gi = *reinterpret_cast<const float4*>(g + e);
      adamw_one(pi.x, gi.x, mi.x, vi.x, c, kk);
      adamw_one(pi.y, gi.y, mi.y, vi.y, c, kk);
      adamw_one(pi.z, gi.z, mi.z, vi.z, c, kk);
      adamw_one(pi.w, gi.w, mi.w, vi.w, c, kk);
      *reinterpret_cast<float4*>(p + e) = pi, *reinterpret_cast<float4*>(m + e) = mi,
                                  *reinterpret_cast<float4*>(v + e) = vi;
    } else {
      for (unsigned long long j = 0; j < left && j < 4; ++j) {
        float pi = p[e + j], mi = m[e + j], vi = v[e + j];
        adamw_one(pi, g[e + j], mi, vi, c, kk);
        p[e + j] = pi, m[e + j] = mi, v[e + j] = vi;
      }
    }
  }
}

__global__ void add_f32_to_f64_kernel(double* dst, const float* src) { *dst += (double)*src; }

unsigned grid_for(size_t n) { return blocks_for(n, kThreads, 132u * 32u); }

}  // namespace

void embedding_forward(Context& ctx, bf16* out, const int32_t* tokens, const bf16* table, int N, int C, int V) {
  OB_CHECK(N > 0 && C > 0, "embedding_forward: empty shape");
  embedding_forward_kernel<<<N, 128, 0, stream_of(ctx)>>>(dev(out), tokens, dev(table), C, V);
  check_last_launch("embedding_forward");
}

void embedding_backward(Context& ctx, float* dtable, const bf16* dout, const int32_t* tokens, int N, int C) {
  OB_CHECK(N > 0 && C > 0, "embedding_backward: empty shape");
  cudaStream_t st = stream_of(ctx);
  size_t sort_bytes = 0;
  OB_CUDA(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, (const int32_t*)nullptr, (int32_t*)nullptr,
                                          (const int32_t*)nullptr, (int32_t*)nullptr, N, 0, 32, st));
  const size_t ids = ((size_t)N * sizeof(int32_t) + 255) / 256 * 256;
  // Scratch: sorted keys, positions in and out, the sort's temporary storage, then the segment sums
  // (one f32 row per sorted index: only the first rows of segments of long runs are written).
  const size_t sort_bytes_al = (sort_bytes + 255) / 256 * 256;
  char* base = static_cast<char*>(ctx.scratch(3 * ids + sort_bytes_al + (size_t)N * C * sizeof(float)));
  auto* partial = reinterpret_cast<float*>(base + 3 * ids + sort_bytes_al);
  auto* keys = reinterpret_cast<int32_t*>(base);
  auto* pos_in = reinterpret_cast<int32_t*>(base + ids);
  auto* pos = reinterpret_cast<int32_t*>(base + 2 * ids);
  iota_kernel<<<(N + 255) / 256, 256, 0, st>>>(pos_in, N);
  OB_CUDA(cub::DeviceRadixSort::SortPairs(base + 3 * ids, sort_bytes, tokens, keys, pos_in, pos, N, 0, 32, st));
  embedding_segment_kernel<<<N, 128, 0, st>>>(dtable, partial, dev(dout), keys, pos, N, C);
  embedding_fold_kernel<<<N, 128, 0, st>>>(dtable, partial, keys, N, C);
  check_last_launch("embedding_backward");
}

void axpy(Context& ctx, float* y, float a, const float* x, size_t n) {
  if (n == 0) return;
  axpy_kernel<<<grid_for(n), kThreads, 0, stream_of(ctx)>>>(y, a, x, n);
  check_last_launch("axpy");
}

void scale(Context& ctx, bf16* y, float a, const bf16* x, size_t n) {
  if (n == 0) return;
  scale_bf16_kernel<<<grid_for(n), kThreads, 0, stream_of(ctx)>>>(dev(y), a, dev(x), n);
  check_last_launch("scale");
}

void grad_norm_sq(Context& ctx, double* norm_sq, const float* g, size_t n) {
  OB_CHECK(n > 0, "grad_norm_sq: empty tensor");
  const size_t chunks = (n + kNormChunk - 1) / kNormChunk;
  OB_CHECK(chunks <= 0x7fffffffu, "grad_norm_sq: ", n, " values is too many");
  auto* partial = static_cast<double*>(ctx.scratch(chunks * sizeof(double)));
  cudaStream_t st = stream_of(ctx);
  sq_partial_kernel<<<(unsigned)chunks, kThreads, 0, st>>>(partial, g, n, aligned16(g) ? 1 : 0);
  fold_sum_kernel<<<1, 1024, 0, st>>>(norm_sq, partial, (int)chunks);
  check_last_launch("grad_norm_sq");
}

void clip_factor(Context& ctx, float* factor, const double* norm_sq, double max_norm) {
  clip_factor_kernel<<<1, 1, 0, stream_of(ctx)>>>(factor, norm_sq, max_norm);
  check_last_launch("clip_factor");
}

void adamw_step(Context& ctx, float* params, const float* grads, float* m, float* v, const AdamWRange* ranges,
                size_t num_ranges, const AdamWHyper& h, const float* clip) {
  AdamWConsts k;
  k.b1 = h.beta1;
  k.b2 = h.beta2;
  k.eps = h.eps;
  k.step_size = h.lr / h.bias1;
  k.inv_sqrt_bc2 = 1.0f / std::sqrt(h.bias2);
  k.decay = 1.0f;  // per span below
  cudaStream_t st = stream_of(ctx);
  // Ranges in launches of up to kAdamWSpans spans (adjacent ranges of one decay merge: one launch at the presets).
  AdamWSpans spans{};
  auto launch = [&] {
    if (spans.count == 0) return;
    const unsigned long long units = spans.first_unit[spans.count];
    adamw_spans_kernel<<<grid_for(units), kThreads, 0, st>>>(params, grads, m, v, clip, k, spans);
    spans.count = 0;
  };
  size_t end = 0;
  for (size_t r = 0; r < num_ranges; ++r) {
    const AdamWRange& rg = ranges[r];
    if (rg.numel == 0) continue;
    // One launch updates its spans concurrently: ranges must not overlap (the layouts' never do).
    OB_CHECK(rg.offset >= end, "adamw_step: range ", r, " at ", rg.offset, " overlaps or precedes the one before");
    end = rg.offset + rg.numel;
    const float decay = rg.decay ? 1.0f - h.lr * h.weight_decay : 1.0f;
    const int last = spans.count - 1;
    if (last >= 0 && spans.offset[last] + spans.numel[last] == rg.offset && spans.decay[last] == decay) {
      // Adjacent with the same decay (a layer's projections, its norms): one span, the units of the whole run
      // counted from its start (aligned or not as the start is).
      spans.numel[last] += rg.numel;
      spans.first_unit[last + 1] = spans.first_unit[last] + (spans.numel[last] + 3) / 4;
      continue;
    }
    const int i = spans.count;
    spans.offset[i] = rg.offset;
    spans.numel[i] = rg.numel;
    spans.decay[i] = decay;
    spans.vec[i] = aligned16(params + rg.offset) && aligned16(grads + rg.offset) && aligned16(m + rg.offset) &&
                   aligned16(v + rg.offset);
    if (i == 0) spans.first_unit[0] = 0;
    spans.first_unit[i + 1] = spans.first_unit[i] + (rg.numel + 3) / 4;
    spans.count = i + 1;
    if (spans.count == kAdamWSpans) launch();
  }
  launch();
  check_last_launch("adamw_step");
}

void add_to_f64(Context& ctx, double* dst, const float* src) {
  add_f32_to_f64_kernel<<<1, 1, 0, stream_of(ctx)>>>(dst, src);
  check_last_launch("add_to_f64");
}

}  // namespace onebit::kernels::cuda
