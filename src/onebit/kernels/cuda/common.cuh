#pragma once
// Internal to the CUDA backend: error checks, bf16 views and the context's private state.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <map>
#include <tuple>

#include "onebit/core/error.h"
#include "onebit/kernels/cuda/cuda_kernels.h"

#define OB_CUDA(call)                                                                                   \
  do {                                                                                                  \
    const cudaError_t ob_err_ = (call);                                                                 \
    if (ob_err_ != cudaSuccess) ::onebit::fail("CUDA: ", #call, ": ", cudaGetErrorString(ob_err_));    \
  } while (0)
#define OB_CUBLAS(call)                                                                                 \
  do {                                                                                                  \
    const cublasStatus_t ob_st_ = (call);                                                               \
    if (ob_st_ != CUBLAS_STATUS_SUCCESS) ::onebit::fail("cuBLASLt: ", #call, ": status ", (int)ob_st_); \
  } while (0)

namespace onebit::kernels::cuda {

static_assert(sizeof(bf16) == sizeof(__nv_bfloat16));
inline __nv_bfloat16* dev(bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }
inline const __nv_bfloat16* dev(const bf16* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }

// One cached cuBLASLt plan: descriptors and the heuristic's algorithm for one shape and alignment.
struct MatmulPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};
// (trans_a, trans_b, M, N, K, lda, ldb, ldc, out type, alignments of A/B/C, beta != 0)
using MatmulKey = std::tuple<int, int, int, int, int, int, int, int, int, int, int, int, int>;

struct Context::Impl {
  Stream stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  void* scratch = nullptr;
  size_t scratch_bytes = 0;
  cudaStream_t side = nullptr;  // fork() / join(); created on first use
  cudaEvent_t forked = nullptr, joined = nullptr;
  std::function<void(size_t)> grew;  // told the bytes of every growth (CudaOps' peak accounting)
  std::map<MatmulKey, MatmulPlan> plans;
};

inline cudaStream_t stream_of(Context& ctx) { return ctx.stream(); }

// The current device's streaming multiprocessors: the grid of a persistent kernel (one block per SM).
int sm_count();

inline unsigned blocks_for(size_t n, unsigned threads, unsigned cap = 65535u * 16u) {
  const size_t b = (n + threads - 1) / threads;
  return (unsigned)(b < 1 ? 1 : (b > cap ? cap : b));
}

// Eight bf16 values moved as one 16-byte access (the unit of every vectorised kernel: a warp's loads
// then cover 512 contiguous bytes), widened to / narrowed from f32 registers.
__device__ inline void unpack8(float (&v)[8], const uint4& u) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}
__device__ inline void load8(float (&v)[8], const __nv_bfloat16* p) {
  unpack8(v, *reinterpret_cast<const uint4*>(p));
}
__device__ inline void store8(__nv_bfloat16* p, const float (&v)[8]) {
  uint4 u;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
  *reinterpret_cast<uint4*>(p) = u;
}
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Lets `kernel` take `bytes` of dynamic shared memory, above the 48 KB default (callers do it once per kernel).
template <typename Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  OB_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

// Warp and block sums / maxima (blockDim.x a multiple of 32, at most 1024). Every thread gets the result.
template <typename T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename T>
__device__ inline T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
template <typename T>
__device__ inline T block_sum(T v, T* shared32) {
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  T t = lane < nw ? shared32[lane] : T(0);
  return warp_sum(t);
}
template <typename T>
__device__ inline T block_max(T v, T* shared32) {
  v = warp_max(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  T t = lane < nw ? shared32[lane] : T(-INFINITY);
  return warp_max(t);
}

// Binary search over ascending keys[0, n): the first index whose key is >= key (upper: > key).
template <typename U>
__device__ inline int run_bound(const U* keys, int n, U key, bool upper) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = (lo + hi) >> 1;
    if (keys[mid] < key || (upper && keys[mid] == key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
// The run a flat index x falls in, where first[i] is run i's first index (ascending, first[0] <= x): the last i of
// [0, count) with first[i] <= x. An empty run (first[i] == first[i + 1]) is never chosen. The flat grids of the
// batched kernels (AdamW's spans, the weight quantization's tensors) find their work with it.
template <typename U>
__device__ inline int run_of(const U* first, int count, U x) {
  return run_bound(first, count, x, true) - 1;
}
}  // namespace onebit::kernels::cuda
