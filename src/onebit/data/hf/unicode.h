#pragma once
// UTF-8 and Unicode property helpers for the tokenizer.json pipeline. Properties and normalization
// come from utf8proc; the few predicates below mirror the Rust `char` methods HF `tokenizers` uses,
// so that onebit splits text exactly where HF does.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "onebit/data/utf8.h"

namespace onebit::data::hf {

// Decodes the code point starting at s[i] (s must be valid UTF-8) and advances i past it.
char32_t next_codepoint(std::string_view s, size_t& i);
// Byte length of the UTF-8 sequence whose lead byte is `lead` (valid UTF-8 only).
inline size_t utf8_len(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}
// Returns `text` itself when it is valid UTF-8; otherwise writes into `scratch` a copy in which
// every maximal ill-formed subsequence is one U+FFFD (utf8.h, replace_invalid_utf8) and returns that.
std::string_view sanitize_utf8(std::string_view text, std::string& scratch);
using onebit::data::append_utf8;
using onebit::data::is_valid_utf8;

// The one code point of a tokenizer.json field HF declares as a Rust `char` (a Metaspace replacement,
// a Strip content, a delimiter): anything else is an error naming `what`.
char32_t single_char(const std::string& s, const std::string& what);

// Rust char::is_whitespace (the White_Space property).
bool is_whitespace(char32_t cp);
// Rust char::is_alphanumeric, plus '_' (HF's word-character test for single_word tokens).
bool is_word_char(char32_t cp);
// HF's Punctuation pre-tokenizer test: ASCII punctuation or a Unicode P* category.
bool is_punctuation(char32_t cp);

// Unicode normal forms (utf8proc); `form` is "NFC", "NFD", "NFKC" or "NFKD".
std::string normalize_form(std::string_view text, std::string_view form);
// Full per-character lowercase as Rust char::to_lowercase (no context-dependent rules).
std::string lowercase(std::string_view text);

}  // namespace onebit::data::hf
