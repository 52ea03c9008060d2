#pragma once
// Helpers shared by the tokenizer parity tests.
#include <cstdint>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/core/json_util.h"

namespace onebit::data::test {

inline fs::path fixtures_dir() { return fs::path(ONEBIT_TEST_FIXTURES) / "tokenizers"; }
// GPT-2's tokenizer.json and HF's ids for it, copied from shared/ so the tests need nothing beside the repo.
inline fs::path gpt2_fixture_dir() { return fixtures_dir() / "gpt2"; }

inline std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> rows;
  std::string text = read_file(p);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (nl > pos) rows.push_back(json::parse(text.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  return rows;
}

// Little-endian int32 file → ids.
inline std::vector<int32_t> read_i32(const fs::path& p) {
  std::string bytes = read_file(p);
  std::vector<int32_t> ids(bytes.size() / 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data()) + 4 * i;
    ids[i] = static_cast<int32_t>(uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24);
  }
  return ids;
}

// First index where a and b differ, with a few ids of context, for failure messages.
inline std::string first_difference(const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::string s = "first difference at " + std::to_string(i) + " (got " + std::to_string(got.size()) +
                  " ids, want " + std::to_string(want.size()) + "): got [";
  for (size_t k = i; k < got.size() && k < i + 8; ++k) s += std::to_string(got[k]) + " ";
  s += "] want [";
  for (size_t k = i; k < want.size() && k < i + 8; ++k) s += std::to_string(want[k]) + " ";
  return s + "]";
}

}  // namespace onebit::data::test
