#include "onebit/formats/gguf/dequantize.h"

#include <cstring>

#include "onebit/core/error.h"
#include "onebit/formats/gguf/half.h"
#include "onebit/formats/gguf/ternary_blocks.h"

namespace onebit::formats::gguf {

bool can_dequantize(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16 || t == GgmlType::TQ1_0 ||
         t == GgmlType::TQ2_0;
}

void dequantize(GgmlType t, std::span<const uint8_t> bytes, std::span<float> out, const std::string& what) {
  auto check_2byte = [&] {
    OB_CHECK(bytes.size() == out.size() * 2, what, ": ", bytes.size(), " bytes for ", out.size(), " values");
  };
  switch (t) {
    case GgmlType::F32:
      OB_CHECK(bytes.size() == out.size() * 4, what, ": ", bytes.size(), " bytes for ", out.size(), " values");
      std::memcpy(out.data(), bytes.data(), bytes.size());
      return;
    case GgmlType::F16:
      check_2byte();
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        out[i] = f16_to_f32(h);
      }
      return;
    case GgmlType::BF16:
      check_2byte();
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      return;
    case GgmlType::TQ1_0: dequantize_tq1_0(bytes, out); return;
    case GgmlType::TQ2_0: dequantize_tq2_0(bytes, out); return;
    default:
      fail(what, " has ggml type ", ggml_type_name(t), ", which onebit does not read (F32, F16, BF16, TQ1_0, TQ2_0)");
  }
}

}  // namespace onebit::formats::gguf
