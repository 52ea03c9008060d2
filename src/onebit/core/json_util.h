#pragma once
// Typed access to JSON objects with errors that name the file and key.
#include <nlohmann/json.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"

namespace onebit {

using json = nlohmann::json;

// Parses a JSON file; a syntax error names the file and byte position.
json read_json_file(const fs::path& path);
void write_json_atomic(const fs::path& path, const json& j, int indent = 2);

namespace detail {

// nlohmann's get<T>() converts numbers silently: 1.5 to an int 1, -1 to an unsigned 2^64-1, 2^40
// to an int's low bits. An integer T takes only an integer JSON value that fits it.
template <typename T>
T json_value(const json& v, const std::string& key, const std::string& where) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (!v.is_number_integer())
      fail(where, ": key \"", key, "\" has the wrong type (got ", v.type_name(), ", expected an integer)");
    bool fits;
    if (v.is_number_unsigned()) {
      fits = v.template get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    } else {
      const int64_t x = v.template get<int64_t>();
      fits = x < 0 ? std::is_signed_v<T> && x >= static_cast<int64_t>(std::numeric_limits<T>::min())
                   : static_cast<uint64_t>(x) <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    }
    if (!fits) fail(where, ": key \"", key, "\" is out of range (got ", v.dump(), ")");
    return v.template get<T>();
  } else {
    try {
      return v.template get<T>();
    } catch (const json::exception&) {
      fail(where, ": key \"", key, "\" has the wrong type (got ", v.type_name(), ")");
    }
  }
}

}  // namespace detail

// Reads key `key` of object `obj` as T; `where` names the source (a file) for the error.
template <typename T>
T json_get(const json& obj, const std::string& key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(where, ": missing key \"", key, "\"");
  return detail::json_value<T>(*it, key, where);
}

template <typename T>
T json_get_or(const json& obj, const std::string& key, T def, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  return detail::json_value<T>(*it, key, where);
}

}  // namespace onebit
