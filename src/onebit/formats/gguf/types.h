#pragma once
// GGUF's two type systems: ggml tensor types (with their block size and bytes per block, the facts of
// llama.cpp's ggml-common.h) and metadata value types (gguf.h). Numbers are the on-disk values.
#include <cstdint>
#include <optional>
#include <string>

namespace onebit::formats::gguf {

inline constexpr uint32_t kVersion = 3;
inline constexpr uint32_t kDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT
inline constexpr int kMaxDims = 4;                 // GGML_MAX_DIMS
inline constexpr size_t kMaxNameBytes = 63;        // GGML_MAX_NAME - 1 (names are NUL-terminated in ggml)
inline constexpr int64_t kQK_K = 256;              // super-block of the K and ternary types

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35,
  MXFP4 = 39,
};

struct GgmlTypeTraits {
  const char* name;   // as ggml_type_name spells it ("tq2_0")
  int64_t block;      // elements per block
  size_t block_bytes; // bytes per block
};

// Traits of a known type; nullopt for a number onebit does not know (a newer or corrupt file).
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type);
const char* ggml_type_name(GgmlType t);
// Bytes of a row of `n` elements; n must be a multiple of the block size (checked by callers).
size_t ggml_row_bytes(GgmlType t, int64_t n);

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
const char* value_type_name(ValueType t);
bool is_valid_value_type(uint32_t t);
// Bytes of a fixed-size value type; 0 for STRING and ARRAY.
size_t value_type_size(ValueType t);

}  // namespace onebit::formats::gguf
