#pragma once
// UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF): validation, repair and encoding. The one
// implementation for the whole data module (document readers, byte-level tables, tokenizer.json).
#include <cstddef>
#include <string>
#include <string_view>

namespace onebit::data {

// Offset of the first invalid byte, or npos if `s` is valid UTF-8.
size_t find_invalid_utf8(std::string_view s);
inline bool is_valid_utf8(std::string_view s) { return find_invalid_utf8(s) == std::string_view::npos; }
// Copies s replacing every maximal ill-formed subsequence with U+FFFD (Unicode's "substitution of
// maximal subparts", identical to Python's bytes.decode("utf-8", "replace")); returns how many
// were replaced.
size_t replace_invalid_utf8(std::string_view s, std::string& out);
// Appends the UTF-8 encoding of cp.
void append_utf8(std::string& out, char32_t cp);

}  // namespace onebit::data
