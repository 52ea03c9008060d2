#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "onebit/core/error.h"
#include "onebit/dist/bf16_convert.h"

namespace onebit::dist {

namespace {

__global__ void to_bf16(const float* src, __nv_bfloat16* dst, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = __float2bfloat16(src[i]);
}

__global__ void to_f32(const __nv_bfloat16* src, float* dst, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = __bfloat162float(src[i]);
}

unsigned blocks(size_t n) { return (unsigned)std::min<size_t>((n + 255) / 256, 65535); }

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) fail(what, ": ", cudaGetErrorString(e));
}

}  // namespace

void f32_to_bf16(const float* src, uint16_t* dst, size_t n, void* stream) {
  if (n == 0) return;
  to_bf16<<<blocks(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(src, reinterpret_cast<__nv_bfloat16*>(dst), n);
  check_launch("f32_to_bf16");
}

void bf16_to_f32(const uint16_t* src, float* dst, size_t n, void* stream) {
  if (n == 0) return;
  to_f32<<<blocks(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(reinterpret_cast<const __nv_bfloat16*>(src), dst, n);
  check_launch("bf16_to_f32");
}

}  // namespace onebit::dist
