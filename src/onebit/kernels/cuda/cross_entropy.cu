// Fused softmax cross-entropy, one block per row of bf16 logits: the max and sum-exp in f32, then (for
// training) the gradient written over the logits; rows up to 65536 wide are held in registers. lm_head_cross_entropy runs the LM head
// in row chunks around it, so only a [chunk, V] bf16 logits buffer ever exists.
#include <algorithm>

#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kThreads = 512;

__global__ void cross_entropy_kernel(__nv_bfloat16* logits, float* losses, const int32_t* targets, int V,
                                     float dscale, bool want_grad) {
  __shared__ float shm[32], shs[32];
  const int row = blockIdx.x;
  __nv_bfloat16* l = logits + (size_t)row * V;
  const int tgt = targets[row];
  if (tgt < 0) {
    if (threadIdx.x == 0) losses[row] = 0.0f;
    if (want_grad)
      for (int v = threadIdx.x; v < V; v += blockDim.x) l[v] = __float2bfloat16_rn(0.0f);
    return;
  }
  float m = -INFINITY, s = 0.0f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float x = __bfloat162float(l[v]);
    if (x > m) {
      s = s * expf(m - x) + 1.0f;
      m = x;
    } else {
      s += expf(x - m);
    }
  }
  // Combine (m, s) across the block: rescale every partial sum to the block maximum.
  const float M = block_max(m, shm);
  s = m == -INFINITY ? 0.0f : s * expf(m - M);
  const float S = block_sum(s, shs);
  const float lse = M + logf(S);
  // Every thread has read its logits before any is overwritten: the target logit is read first.
  const float lt = tgt < V ? __bfloat162float(l[tgt]) : NAN;  // an out-of-range target poisons the loss
  __syncthreads();
  if (threadIdx.x == 0) losses[row] = lse - lt;
  if (!want_grad) return;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float p = expf(__bfloat162float(l[v]) - lse);
    l[v] = __float2bfloat16_rn(dscale * (p - (v == tgt ? 1.0f : 0.0f)));
  }
}

// The same per row with the row held in registers (VPT 16-byte vectors of 8 bf16 per thread, still
// packed): one read of the logits from memory and one write of the gradient, where the kernel above
// reads them twice (its online max / sum pass, then the gradient pass). The max, the sum of exp(x - M)
// and the gradient are computed from the same bf16 values in the same fixed block-reduction order,
// with the exact max taken first (no online rescaling). V a multiple of 8, rows 16-byte aligned.
// THREADS a block: vocabularies up to 32768 take 1024 threads of 4 vectors (at most 64 registers: 32 warps per
// SM) rather than 512 of 8 (98 registers, one block and 16 warps per SM, which left a 32000-wide row's loads
// and its reductions' barriers in turn on each SM: ~46% of the bandwidth, 0.93 ms of a 125m step).
template <int VPT, int THREADS = kThreads>
__global__ void __launch_bounds__(THREADS) cross_entropy_regs_kernel(__nv_bfloat16* logits, float* losses,
                                                                     const int32_t* targets, int V, float dscale,
                                                                     bool want_grad) {
  __shared__ float shm[32], shs[32];
  const int row = blockIdx.x, nvec = V / 8;
  __nv_bfloat16* l = logits + (size_t)row * V;
  uint4* lv = reinterpret_cast<uint4*>(l);
  const int tgt = targets[row];
  if (tgt < 0) {
    if (threadIdx.x == 0) losses[row] = 0.0f;
    if (want_grad)
      for (int i = threadIdx.x; i < nvec; i += THREADS) lv[i] = make_uint4(0, 0, 0, 0);
    return;
  }
  uint4 r[VPT];
  float m = -INFINITY;
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int i = threadIdx.x + j * THREADS;
    if (i < nvec) {
      r[j] = lv[i];
      const __nv_bfloat16* e = reinterpret_cast<const __nv_bfloat16*>(&r[j]);
#pragma unroll
      for (int k = 0; k < 8; ++k) m = fmaxf(m, __bfloat162float(e[k]));
    }
  }
  // The target logit is read before any thread overwrites its part of the row (the reductions below
  // hold barriers).
  const float lt = threadIdx.x == 0 ? (tgt < V ? __bfloat162float(l[tgt]) : NAN) : 0.0f;
  const float M = block_max(m, shm);
  float s = 0.0f;
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    if (threadIdx.x + j * THREADS < nvec) {
      const __nv_bfloat16* e = reinterpret_cast<const __nv_bfloat16*>(&r[j]);
#pragma unroll
      for (int k = 0; k < 8; ++k) s += expf(__bfloat162float(e[k]) - M);
    }
  }
  const float lse = M + logf(block_sum(s, shs));
  if (threadIdx.x == 0) losses[row] = lse - lt;  // an out-of-range target poisons the loss (NaN)
  if (!want_grad) return;
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int i = threadIdx.x + j * THREADS;
    if (i < nvec) {
      const __nv_bfloat16* e = reinterpret_cast<const __nv_bfloat16*>(&r[j]);
      float g[8];
#pragma unroll
      for (int k = 0; k < 8; ++k)
        g[k] = dscale * (expf(__bfloat162float(e[k]) - lse) - (i * 8 + k == tgt ? 1.0f : 0.0f));
      store8(l + (size_t)i * 8, g);
    }
  }
}

// *sum = sum of x[0..n) in a fixed order (one block, strided partials, then a fixed tree).
__global__ void sum_kernel(float* sum, const float* x, int n) {
  __shared__ double sh[32];
  double acc = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) *sum = (float)acc;
}

}  // namespace

void cross_entropy(Context& ctx, bf16* logits, float* losses, float* loss_sum, const int32_t* targets, int N, int V,
                   float dscale, bool want_grad) {
  OB_CHECK(N > 0 && V > 0, "cross_entropy: empty shape");
  cudaStream_t st = stream_of(ctx);
  // Rows that fit in registers (V <= 512 threads x 16 vectors x 8 = 65536) take the one-read kernel.
  const int nvec = V / 8, vpt = (nvec + kThreads - 1) / kThreads;
  auto* lg = dev(logits);
  if (V % 8 != 0 || !aligned16(logits) || vpt > 16)
    cross_entropy_kernel<<<N, kThreads, 0, st>>>(lg, losses, targets, V, dscale, want_grad);
  else if (vpt <= 4)
    cross_entropy_regs_kernel<4><<<N, kThreads, 0, st>>>(lg, losses, targets, V, dscale, want_grad);
  else if (nvec <= 4 * 1024)
    cross_entropy_regs_kernel<4, 1024><<<N, 1024, 0, st>>>(lg, losses, targets, V, dscale, want_grad);
  else if (vpt <= 8)
    cross_entropy_regs_kernel<8><<<N, kThreads, 0, st>>>(lg, losses, targets, V, dscale, want_grad);
  else
    cross_entropy_regs_kernel<16><<<N, kThreads, 0, st>>>(lg, losses, targets, V, dscale, want_grad);
  if (loss_sum) sum_kernel<<<1, 1024, 0, st>>>(loss_sum, losses, N);
  check_last_launch("cross_entropy");
}

void lm_head_cross_entropy(Context& ctx, float* losses, float* loss_sum, bf16* dhidden, float* dW,
                           const bf16* hidden, const bf16* W, const int32_t* targets, int N, int C, int V,
                           float dscale, bool want_grad, int chunk_rows) {
  OB_CHECK(N > 0 && C > 0 && V > 0 && chunk_rows > 0, "lm_head_cross_entropy: empty shape");
  OB_CHECK(!want_grad || (dhidden && dW), "lm_head_cross_entropy: gradients requested without dhidden/dW");
  const int rows = std::min(N, chunk_rows);
  auto* logits = static_cast<bf16*>(ctx.scratch(sizeof(bf16) * (size_t)rows * V));
  for (int r0 = 0; r0 < N; r0 += rows) {
    const int n = std::min(rows, N - r0);
    const bf16* h = hidden + (size_t)r0 * C;
    linear_forward(ctx, logits, h, W, n, C, V);
    cross_entropy(ctx, logits, losses + r0, nullptr, targets + r0, n, V, dscale, want_grad);
    if (want_grad) {
      linear_backward_input(ctx, dhidden + (size_t)r0 * C, logits, W, n, C, V);
      linear_backward_weight(ctx, dW, logits, h, n, C, V);
    }
  }
  if (loss_sum) {
    sum_kernel<<<1, 1024, 0, stream_of(ctx)>>>(loss_sum, losses, N);
    check_last_launch("lm_head_cross_entropy");
  }
}

}  // namespace onebit::kernels::cuda
