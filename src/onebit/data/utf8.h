#pragma once
// UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
#include <cstddef>
#include <string>
#include <string_view>

namespace onebit::data {

// Offset of the first invalid byte, or npos if `s` is valid UTF-8.
size_t find_invalid_utf8(std::string_view s);
// Copies s replacing every maximal invalid subsequence with U+FFFD; returns how many were replaced.
size_t replace_invalid_utf8(std::string_view s, std::string& out);

}  // namespace onebit::data
