#pragma once
// One GGUF metadata value: a scalar of any GGUF value type, or an array of scalars of one type
// (nested arrays are refused, as llama.cpp's gguf.cpp refuses them).
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "onebit/formats/gguf/types.h"

namespace onebit::formats::gguf {

using Scalar = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string,
                            uint64_t, int64_t, double>;

// The value type of the alternative a Scalar holds.
ValueType scalar_type(const Scalar& s);

struct Value {
  ValueType type = ValueType::U32;  // ARRAY for arrays
  ValueType elem = ValueType::U32;  // element type of an array
  Scalar scalar;                    // when type != ARRAY
  std::vector<Scalar> array;        // when type == ARRAY, every element of type `elem`

  static Value of(Scalar s) {
    Value v;
    v.type = scalar_type(s);
    v.scalar = std::move(s);
    return v;
  }
  // An array of `elem` (may be empty); every element must hold `elem`.
  static Value array_of(ValueType elem, std::vector<Scalar> items);
  bool is_array() const { return type == ValueType::ARRAY; }
};

// Integer value of a scalar of any integer type (not bool); nullopt-free: errors naming `what`.
int64_t scalar_as_int(const Scalar& s, const std::string& what);
double scalar_as_float(const Scalar& s, const std::string& what);  // F32, F64 or an integer

}  // namespace onebit::formats::gguf
