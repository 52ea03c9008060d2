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

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

char32_t byte_to_unicode(uint8_t b) { return tables().to_cp[b]; }
const std::string& byte_to_symbol(uint8_t b) { return tables().to_sym[b]; }

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

}  // namespace onebit::data
