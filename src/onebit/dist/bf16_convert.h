#pragma once
// f32 <-> bf16 for the NCCL path's gradient buckets, on the GPU (bf16_convert.cu). bf16 is stored as
// uint16_t here so that this header needs no CUDA headers. Round to nearest even, as __float2bfloat16.
#include <cstddef>
#include <cstdint>

namespace onebit::dist {

// stream: a cudaStream_t.
void f32_to_bf16(const float* src, uint16_t* dst, size_t n, void* stream);
void bf16_to_f32(const uint16_t* src, float* dst, size_t n, void* stream);

}  // namespace onebit::dist
