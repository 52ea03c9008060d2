#include "onebit/formats/gguf/value.h"

#include "onebit/core/error.h"

namespace onebit::formats::gguf {

ValueType scalar_type(const Scalar& s) {
  static constexpr ValueType kByIndex[] = {ValueType::U8,  ValueType::I8,  ValueType::U16, ValueType::I16,
                                           ValueType::U32, ValueType::I32, ValueType::F32, ValueType::BOOL,
                                           ValueType::STRING, ValueType::U64, ValueType::I64, ValueType::F64};
  return kByIndex[s.index()];
}

Value Value::array_of(ValueType elem, std::vector<Scalar> items) {
  OB_CHECK(elem != ValueType::ARRAY, "GGUF arrays of arrays are not supported");
  for (const auto& s : items)
    OB_CHECK(scalar_type(s) == elem, "GGUF array of ", value_type_name(elem), " holds a ",
             value_type_name(scalar_type(s)));
  Value v;
  v.type = ValueType::ARRAY;
  v.elem = elem;
  v.array = std::move(items);
  return v;
}

int64_t scalar_as_int(const Scalar& s, const std::string& what) {
  return std::visit(
      [&](const auto& x) -> int64_t {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, uint64_t>) {
          if (x > static_cast<uint64_t>(INT64_MAX)) fail(what, ": value ", x, " is too large");
          return static_cast<int64_t>(x);
        } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          return static_cast<int64_t>(x);
        } else {
          fail(what, " must be an integer, not ", value_type_name(scalar_type(s)));
        }
      },
      s);
}

double scalar_as_float(const Scalar& s, const std::string& what) {
  if (const float* f = std::get_if<float>(&s)) return *f;
  if (const double* d = std::get_if<double>(&s)) return *d;
  if (std::holds_alternative<bool>(s) || std::holds_alternative<std::string>(s))
    fail(what, " must be a number, not ", value_type_name(scalar_type(s)));
  return static_cast<double>(scalar_as_int(s, what));
}

}  // namespace onebit::formats::gguf
