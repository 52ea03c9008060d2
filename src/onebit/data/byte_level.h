#pragma once
// GPT-2's byte-level alphabet (bytes_to_unicode in openai/gpt-2 encoder.py and HF `tokenizers`):
// every byte maps to one printable code point, so byte-level BPE vocabularies are valid JSON strings.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "onebit/core/json_util.h"
#include "onebit/data/utf8.h"  // append_utf8

namespace onebit::data {

// The code point GPT-2 uses for byte b.
char32_t byte_to_unicode(uint8_t b);
// The same symbol, UTF-8 encoded (1 or 2 bytes).
const std::string& byte_to_symbol(uint8_t b);
// Inverse of byte_to_unicode; -1 if cp is not one of the 256 symbols.
int unicode_to_byte(char32_t cp);
// The 256 bytes sorted by their symbol's code point: the order of GPT-2's vocab.json and of the
// alphabet ids Hugging Face's BpeTrainer assigns (which break its ties between equal counts).
std::array<uint8_t, 256> bytes_in_symbol_order();
// Maps every byte of `bytes` to its symbol (what ByteLevel pre-tokenization produces).
std::string bytes_to_symbols(std::string_view bytes);
// Inverse of bytes_to_symbols; returns false if `symbols` holds a code point outside the alphabet.
bool symbols_to_bytes(std::string_view symbols, std::string& out);

// The pieces of a byte-level BPE tokenizer.json that onebit writes (the byte tokenizer and the BPE
// trainer's output), so both are the same JSON but for vocab, merges, specials and pre-tokenizer.
// {"type": "ByteLevel"} without prefix space or regex: the pre-tokenizer step and the decoder.
json byte_level_component();
// A special added token: matched on the raw text, never normalized or stripped.
json special_added_token(int64_t id, const std::string& content);
json byte_level_bpe_tokenizer_json(json vocab, json merges, json added_tokens, json pre_tokenizer);

}  // namespace onebit::data
