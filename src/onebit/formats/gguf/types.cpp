#include "onebit/formats/gguf/types.h"

namespace onebit::formats::gguf {

namespace {

struct Row {
  uint32_t id;
  GgmlTypeTraits traits;
};
// (block size, type size) per ggml-common.h / gguf-py's GGML_QUANT_SIZES.
constexpr Row kTypes[] = {
    {0, {"f32", 1, 4}},          {1, {"f16", 1, 2}},           {2, {"q4_0", 32, 18}},
    {3, {"q4_1", 32, 20}},       {6, {"q5_0", 32, 22}},        {7, {"q5_1", 32, 24}},
    {8, {"q8_0", 32, 34}},       {9, {"q8_1", 32, 36}},        {10, {"q2_K", 256, 84}},
    {11, {"q3_K", 256, 110}},    {12, {"q4_K", 256, 144}},     {13, {"q5_K", 256, 176}},
    {14, {"q6_K", 256, 210}},    {15, {"q8_K", 256, 292}},     {16, {"iq2_xxs", 256, 66}},
    {17, {"iq2_xs", 256, 74}},   {18, {"iq3_xxs", 256, 98}},   {19, {"iq1_s", 256, 50}},
    {20, {"iq4_nl", 32, 18}},    {21, {"iq3_s", 256, 110}},    {22, {"iq2_s", 256, 82}},
    {23, {"iq4_xs", 256, 136}},  {24, {"i8", 1, 1}},           {25, {"i16", 1, 2}},
    {26, {"i32", 1, 4}},         {27, {"i64", 1, 8}},          {28, {"f64", 1, 8}},
    {29, {"iq1_m", 256, 56}},    {30, {"bf16", 1, 2}},         {34, {"tq1_0", 256, 54}},
    {35, {"tq2_0", 256, 66}},    {39, {"mxfp4", 32, 17}},
};

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type) {
  for (const auto& r : kTypes)
    if (r.id == type) return r.traits;
  return std::nullopt;
}

const char* ggml_type_name(GgmlType t) {
  const auto tr = ggml_type_traits(static_cast<uint32_t>(t));
  return tr ? tr->name : "unknown";
}

size_t ggml_row_bytes(GgmlType t, int64_t n) {
  const auto tr = *ggml_type_traits(static_cast<uint32_t>(t));
  return static_cast<size_t>(n / tr.block) * tr.block_bytes;
}

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8: return "uint8";
    case ValueType::I8: return "int8";
    case ValueType::U16: return "uint16";
    case ValueType::I16: return "int16";
    case ValueType::U32: return "uint32";
    case ValueType::I32: return "int32";
    case ValueType::F32: return "float32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::U64: return "uint64";
    case ValueType::I64: return "int64";
    case ValueType::F64: return "float64";
  }
  return "unknown";
}

bool is_valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::F64); }

size_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    case ValueType::STRING: case ValueType::ARRAY: return 0;
  }
  return 0;
}

}  // namespace onebit::formats::gguf
