#pragma once
// IEEE half and bfloat16 conversions, rounding to nearest even (what ggml's GGML_FP32_TO_FP16 and
// numpy's astype(float16) do), so onebit's F16 tensors are bit-identical to theirs.
#include <cstdint>

namespace onebit::formats::gguf {

uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);  // NaN stays a quiet NaN
float bf16_to_f32(uint16_t h);

}  // namespace onebit::formats::gguf
