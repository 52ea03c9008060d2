#pragma once
// Typed access to JSON objects with errors that name the file and key.
#include <nlohmann/json.hpp>
#include <string>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"

namespace onebit {

using json = nlohmann::json;

// Parses a JSON file; a syntax error names the file and byte position.
json read_json_file(const fs::path& path);
void write_json_atomic(const fs::path& path, const json& j, int indent = 2);

// Reads key `key` of object `obj` as T; `where` names the source (a file) for the error.
template <typename T>
T json_get(const json& obj, const std::string& key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(where, ": missing key \"", key, "\"");
  try {
    return it->template get<T>();
  } catch (const json::exception&) {
    fail(where, ": key \"", key, "\" has the wrong type (got ", it->type_name(), ")");
  }
}

template <typename T>
T json_get_or(const json& obj, const std::string& key, T def, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  try {
    return it->template get<T>();
  } catch (const json::exception&) {
    fail(where, ": key \"", key, "\" has the wrong type (got ", it->type_name(), ")");
  }
}

}  // namespace onebit
