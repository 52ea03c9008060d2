#pragma once
// Tensor bytes of a GGUF type → f32 values, for the types onebit reads (F32, F16, BF16, TQ1_0,
// TQ2_0); any other type is an error naming `what`.
#include <cstdint>
#include <span>
#include <string>

#include "onebit/formats/gguf/types.h"

namespace onebit::formats::gguf {

bool can_dequantize(GgmlType t);
void dequantize(GgmlType t, std::span<const uint8_t> bytes, std::span<float> out, const std::string& what);

}  // namespace onebit::formats::gguf
