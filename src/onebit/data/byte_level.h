#pragma once
// GPT-2's byte-level alphabet (bytes_to_unicode in openai/gpt-2 encoder.py and HF `tokenizers`):
// every byte maps to one printable code point, so byte-level BPE vocabularies are valid JSON strings.
#include <cstdint>
#include <string>
#include <string_view>

namespace onebit::data {

// The code point GPT-2 uses for byte b.
char32_t byte_to_unicode(uint8_t b);
// The same symbol, UTF-8 encoded (1 or 2 bytes).
const std::string& byte_to_symbol(uint8_t b);
// Inverse of byte_to_unicode; -1 if cp is not one of the 256 symbols.
int unicode_to_byte(char32_t cp);
// Maps every byte of `bytes` to its symbol (what ByteLevel pre-tokenization produces).
std::string bytes_to_symbols(std::string_view bytes);
// Inverse of bytes_to_symbols; returns false if `symbols` holds a code point outside the alphabet.
bool symbols_to_bytes(std::string_view symbols, std::string& out);

// Appends the UTF-8 encoding of cp.
void append_utf8(std::string& out, char32_t cp);

}  // namespace onebit::data
