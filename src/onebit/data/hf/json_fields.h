#pragma once
// Reference access to a required member of a tokenizer.json object (json_get copies; the vocab
// and merges are large).
#include <string>

#include "onebit/core/json_util.h"

namespace onebit::data::hf {

inline const json& json_child(const json& obj, const std::string& key, const std::string& where) {
  if (!obj.is_object()) fail(where, ": expected an object holding \"", key, "\"");
  auto it = obj.find(key);
  if (it == obj.end()) fail(where, ": missing key \"", key, "\"");
  return *it;
}

}  // namespace onebit::data::hf
