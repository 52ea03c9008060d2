// Multi-tensor AdamW with global-norm clipping, all on the device. The tensor list is cut into fixed
// chunks once (host), so the squared-norm partials and their fold are in a fixed order: the norm, the
// clip factor and every update are deterministic. Per element, the formula of the CPU backend's
// adamw_step (kernels/cpu/fast_optim.cpp): the gradient times the clip factor, then the
// decoupled-decay AdamW update.
#include <algorithm>
#include <cmath>

#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr size_t kChunk = 1 << 16;

struct Chunk {
  float* p;
  const float* g;
  float* m;
  float* v;
  unsigned n;
  int decay;
};

__global__ void sq_partials_kernel(double* partial, const Chunk* chunks) {
  __shared__ double sh[32];
  const Chunk c = chunks[blockIdx.x];
  double acc = 0;
  for (unsigned i = threadIdx.x; i < c.n; i += blockDim.x) {
    const double g = c.g[i];
    acc += g * g;
  }
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// clip[0] = the factor the gradients are multiplied by (1 when not clipping), norm_out = the norm.
__global__ void clip_factor_kernel(float* clip, double* norm_out, const double* partial, int n, double max_norm) {
  __shared__ double sh[32];
  double acc = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, sh);
  if (threadIdx.x != 0) return;
  const double norm = sqrt(acc);
  float f = 1.0f;
  if (max_norm > 0.0 && norm > max_norm && isfinite(norm)) f = (float)(max_norm / (norm + 1e-6));
  *clip = f;
  if (norm_out) *norm_out = norm;
}

struct StepConsts {
  float b1, b2, eps, step_size, inv_sqrt_bc2, decay;
};

__global__ void adamw_kernel(const Chunk* chunks, const float* clip, StepConsts k) {
  const Chunk c = chunks[blockIdx.x];
  const float f = *clip;
  const float decay = c.decay ? k.decay : 1.0f;
  for (unsigned i = blockIdx.y * blockDim.x + threadIdx.x; i < c.n; i += gridDim.y * blockDim.x) {
    const float gi = c.g[i] * f;
    const float mi = k.b1 * c.m[i] + (1.0f - k.b1) * gi;
    const float vi = k.b2 * c.v[i] + (1.0f - k.b2) * gi * gi;
    c.m[i] = mi;
    c.v[i] = vi;
    const float denom = sqrtf(vi) * k.inv_sqrt_bc2 + k.eps;
    c.p[i] = c.p[i] * decay - k.step_size * mi / denom;
  }
}

}  // namespace

struct AdamW::Impl {
  Chunk* chunks = nullptr;  // device
  int nchunks = 0;
  double* partial = nullptr;  // device, one per chunk
  float* clip = nullptr;      // device
};

AdamW::AdamW(Context& ctx, std::vector<AdamWTensor> tensors) : impl_(std::make_unique<Impl>()) {
  std::vector<Chunk> host;
  for (const auto& t : tensors) {
    OB_CHECK(t.param && t.grad && t.m && t.v, "AdamW: a tensor has a null pointer");
    for (size_t off = 0; off < t.n; off += kChunk)
      host.push_back(Chunk{t.param + off, t.grad + off, t.m + off, t.v + off,
                           (unsigned)std::min(kChunk, t.n - off), t.decay ? 1 : 0});
  }
  OB_CHECK(!host.empty(), "AdamW: no parameters");
  impl_->nchunks = (int)host.size();
  impl_->chunks = static_cast<Chunk*>(device_alloc(sizeof(Chunk) * host.size()));
  upload(impl_->chunks, host.data(), sizeof(Chunk) * host.size(), ctx.stream());
  impl_->partial = static_cast<double*>(device_alloc(sizeof(double) * host.size()));
  impl_->clip = static_cast<float*>(device_alloc(sizeof(float)));
}

AdamW::~AdamW() {
  cudaDeviceSynchronize();
  cudaFree(impl_->chunks);
  cudaFree(impl_->partial);
  cudaFree(impl_->clip);
}

void AdamW::step(Context& ctx, const AdamWStep& s, double* norm_out) {
  OB_CHECK(s.t >= 1, "AdamW: step number ", s.t, " must be at least 1");
  cudaStream_t st = stream_of(ctx);
  auto& d = *impl_;
  sq_partials_kernel<<<d.nchunks, kThreads, 0, st>>>(d.partial, d.chunks);
  clip_factor_kernel<<<1, 1024, 0, st>>>(d.clip, norm_out, d.partial, d.nchunks, s.max_norm);
  // The per-step scalars exactly as train/adamw.cpp computes them (host, double pow then f32).
  StepConsts k;
  k.b1 = s.beta1;
  k.b2 = s.beta2;
  k.eps = s.eps;
  const float bc1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(s.beta1), static_cast<double>(s.t)));
  const float bc2 = 1.0f - static_cast<float>(std::pow(static_cast<double>(s.beta2), static_cast<double>(s.t)));
  k.step_size = s.lr / bc1;
  k.inv_sqrt_bc2 = 1.0f / std::sqrt(bc2);
  k.decay = 1.0f - s.lr * s.weight_decay;
  adamw_kernel<<<dim3(d.nchunks, (unsigned)(kChunk / (kThreads * 4))), kThreads, 0, st>>>(d.chunks, d.clip, k);
  check_last_launch("AdamW::step");
}

}  // namespace onebit::kernels::cuda
