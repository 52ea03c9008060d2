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

// A required member that must be a JSON array (a Sequence's steps, a template, the added tokens).
inline const json& json_array(const json& obj, const std::string& key, const std::string& where) {
  const json& v = json_child(obj, key, where);
  if (!v.is_array()) fail(where, ": \"", key, "\" must be an array (got ", v.type_name(), ")");
  return v;
}

// A token id from the file: an integer in [0, vocab_size), `what` naming it in the error.
inline int32_t json_token_id(const json& v, int32_t vocab_size, const std::string& what) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab_size)
    fail(what, ": id ", json_excerpt(v), " is not a token id (the vocab has ids 0 to ", vocab_size - 1, ")");
  return static_cast<int32_t>(v.get<int64_t>());
}

}  // namespace onebit::data::hf
