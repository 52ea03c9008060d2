#pragma once
// Typed access to JSON objects with errors that name the file and key.
#include <nlohmann/json.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"

namespace onebit {

using json = nlohmann::json;

// Nesting deeper than this is refused while parsing: nlohmann's dump() and comparisons recurse, so
// a file of 100000 '[' would otherwise overflow the stack long after it was accepted.
inline constexpr int kMaxJsonDepth = 256;

// Parses JSON text; every failure is an onebit::Error naming `where` (a file): a syntax error with
// its byte position, a number too large for a double (`1e999`), nesting deeper than kMaxJsonDepth.
json parse_json_text(std::string_view text, const std::string& where);

// Parses a JSON file. Every failure is an onebit::Error naming the file: a syntax error (with its
// byte position), a number too large for a double (`1e999`), a directory or unreadable path.
json read_json_file(const fs::path& path);
void write_json_atomic(const fs::path& path, const json& j, int indent = 2);

// A JSON value shown inside a one-line error: short, escaped, never throwing on odd strings.
std::string json_excerpt(const json& v);

namespace json_detail {

// nlohmann's get<int>() would turn true into 1, 2.5 into 2 and 2^32-5 into -5, and get<float>()
// 1e300 into inf: numbers are converted only when the value is of the right kind and fits.
template <typename T>
bool json_value_fits(const json& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v.is_boolean();
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    if (v.is_number_integer()) {
      const int64_t x = v.get<int64_t>();
      if constexpr (std::is_signed_v<T>) return x >= std::numeric_limits<T>::min() && x <= std::numeric_limits<T>::max();
      else return x >= 0;
    }
    return false;
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) return false;
    const double x = v.get<double>();
    return std::isfinite(x) && std::abs(x) <= static_cast<double>(std::numeric_limits<T>::max());
  } else {
    return true;  // strings, arrays, objects: nlohmann's own type check applies
  }
}

// Errors: a value of the wrong JSON kind "has the wrong type (got string, expected an integer)", an
// integer that does not fit T "is out of range (got -1)", a float beyond T "must be a finite number".
template <typename T>
T json_convert(const json& v, const std::string& key, const std::string& where) {
  if (!json_value_fits<T>(v)) {
    if constexpr (std::is_same_v<T, bool>) {
      fail(where, ": key \"", key, "\" has the wrong type (got ", v.type_name(), ", expected true or false)");
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer())
        fail(where, ": key \"", key, "\" has the wrong type (got ", v.type_name(), ", expected an integer)");
      fail(where, ": key \"", key, "\" is out of range (got ", json_excerpt(v), ")");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number())
        fail(where, ": key \"", key, "\" has the wrong type (got ", v.type_name(), ", expected a number)");
      fail(where, ": key \"", key, "\" must be a finite number (got ", json_excerpt(v), ")");
    }
  }
  try {
    return v.template get<T>();
  } catch (const json::exception&) {
    fail(where, ": key \"", key, "\" has the wrong type (got ", v.type_name(), ")");
  }
}

}  // namespace json_detail

// Reads key `key` of object `obj` as T; `where` names the source (a file) for the error. Integers
// must be integers in T's range, floating-point values finite; booleans must be booleans.
template <typename T>
T json_get(const json& obj, const std::string& key, const std::string& where) {
  if (!obj.is_object()) fail(where, ": expected a JSON object holding \"", key, "\" (got ", obj.type_name(), ")");
  auto it = obj.find(key);
  if (it == obj.end()) fail(where, ": missing key \"", key, "\"");
  return json_detail::json_convert<T>(*it, key, where);
}

template <typename T>
T json_get_or(const json& obj, const std::string& key, T def, const std::string& where) {
  if (!obj.is_object()) fail(where, ": expected a JSON object holding \"", key, "\" (got ", obj.type_name(), ")");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  return json_detail::json_convert<T>(*it, key, where);
}

}  // namespace onebit
