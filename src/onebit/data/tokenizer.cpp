#include "onebit/data/tokenizer.h"

#include <cstdio>

#include "onebit/core/error.h"
#include "onebit/data/byte_tokenizer.h"
#ifdef ONEBIT_HAVE_HF_TOKENIZER
#include "onebit/data/hf/hf_tokenizer.h"
#endif

namespace onebit::data {

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

bool is_line_start_cut(std::string_view text, size_t pos) {
  if (pos < 2 || pos >= text.size()) return false;
  const unsigned char g = static_cast<unsigned char>(text[pos - 2]), c = static_cast<unsigned char>(text[pos]);
  return g > 0x20 && g < 0x7F && text[pos - 1] == '\n' && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
}

std::string canonical_json(const json& j) {
  // nlohmann's object is an ordered std::map, so dump() sorts keys; replace keeps bad UTF-8 hashable.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

uint64_t tokenizer_json_hash(const json& tokenizer_json) { return fnv1a64(canonical_json(tokenizer_json)); }

std::string hash_hex(uint64_t h) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec) {
  if (spec == "byte") return make_byte_tokenizer();
  fs::path p(spec);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    p /= "tokenizer.json";
    if (!fs::exists(p, ec)) fail(spec, ": directory has no tokenizer.json (expected a model dir, a tokenizer.json or \"byte\")");
  } else if (!fs::exists(p, ec)) {
    fail(spec, ": no such tokenizer (expected \"byte\", a tokenizer.json file or a directory holding one)");
  }
#ifdef ONEBIT_HAVE_HF_TOKENIZER
  return load_hf_tokenizer(p);
#else
  fail(p.string(), ": this build has no tokenizer.json loader (src/onebit/data/hf is missing)");
#endif
}

}  // namespace onebit::data
