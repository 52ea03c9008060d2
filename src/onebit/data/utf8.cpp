#include "onebit/data/utf8.h"

#include <cstdint>
#include <cstring>

namespace onebit::data {
namespace {

// Length of the valid sequence starting at s[i], or 0 if invalid there.
size_t valid_seq_len(const unsigned char* s, size_t n, size_t i) {
  unsigned char c = s[i];
  if (c < 0x80) return 1;
  auto cont = [&](size_t k) { return i + k < n && (s[i + k] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    unsigned char c1 = s[i + 1];
    if (c == 0xE0 && c1 < 0xA0) return 0;  // overlong
    if (c == 0xED && c1 >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    unsigned char c1 = s[i + 1];
    if (c == 0xF0 && c1 < 0x90) return 0;
    if (c == 0xF4 && c1 >= 0x90) return 0;
    return 4;
  }
  return 0;
}

}  // namespace

size_t find_invalid_utf8(std::string_view sv) {
  const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
  const size_t n = sv.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    size_t len = valid_seq_len(s, n, i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

size_t replace_invalid_utf8(std::string_view sv, std::string& out) {
  const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
  const size_t n = sv.size();
  size_t replaced = 0;
  out.clear();
  out.reserve(n);
  size_t i = 0;
  while (i < n) {
    size_t len = valid_seq_len(s, n, i);
    if (len > 0) {
      out.append(sv.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++replaced;
      ++i;
      while (i < n && (s[i] & 0xC0) == 0x80) ++i;  // the rest of a broken sequence
    }
  }
  return replaced;
}

}  // namespace onebit::data
