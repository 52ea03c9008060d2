#include "onebit/data/byte_level.h"

#include <array>

namespace onebit::data {
namespace {

struct ByteTables {
  std::array<char32_t, 256> to_cp{};
  std::array<std::string, 256> to_sym{};
  std::array<int16_t, 324> from_cp{};  // every GPT-2 symbol is < 256 + 68
  ByteTables() {
    from_cp.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      to_cp[b] = cp;
      append_utf8(to_sym[b], cp);
      from_cp[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return tables().to_cp[b]; }
const std::string& byte_to_symbol(uint8_t b) { return tables().to_sym[b]; }

std::array<uint8_t, 256> bytes_in_symbol_order() {
  const auto& t = tables();
  std::array<uint8_t, 256> out{};
  size_t n = 0;
  for (int16_t b : t.from_cp)
    if (b >= 0) out[n++] = static_cast<uint8_t>(b);
  return out;
}

int unicode_to_byte(char32_t cp) {
  const auto& t = tables();
  return cp < t.from_cp.size() ? t.from_cp[cp] : -1;
}

std::string bytes_to_symbols(std::string_view bytes) {
  const auto& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += t.to_sym[c];
  return out;
}

bool symbols_to_bytes(std::string_view s, std::string& out) {
  // Symbols are U+0000..U+0143, so 1- or 2-byte UTF-8 only.
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    char32_t cp;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
      cp = (static_cast<char32_t>(c & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      i += 2;
    } else {
      return false;
    }
    int b = unicode_to_byte(cp);
    if (b < 0) return false;
    out += static_cast<char>(b);
  }
  return true;
}

json byte_level_component() {
  return json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
}

json special_added_token(int64_t id, const std::string& content) {
  return json{{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
              {"rstrip", false}, {"normalized", false},  {"special", true}};
}

json byte_level_bpe_tokenizer_json(json vocab, json merges, json added_tokens, json pre_tokenizer) {
  return json{
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", std::move(added_tokens)},
      {"normalizer", nullptr},
      {"pre_tokenizer", std::move(pre_tokenizer)},
      {"post_processor", nullptr},
      {"decoder", byte_level_component()},
      {"model", json{{"type", "BPE"},
                     {"dropout", nullptr},
                     {"unk_token", nullptr},
                     {"continuing_subword_prefix", nullptr},
                     {"end_of_word_suffix", nullptr},
                     {"fuse_unk", false},
                     {"byte_fallback", false},
                     {"ignore_merges", false},
                     {"vocab", std::move(vocab)},
                     {"merges", std::move(merges)}}},
  };
}

}  // namespace onebit::data
