#pragma once
// The built-in byte tokenizer: ids 0..255 are the bytes of the UTF-8 text, 256 is "<|endoftext|>"
// (eos; there is no bos). Its to_json() is a Hugging Face byte-level BPE with no merges, so Python
// `tokenizers` encodes any text to exactly the same ids.
#include <memory>

#include "onebit/data/tokenizer.h"

namespace onebit::data {

inline constexpr int32_t kByteEosId = 256;
inline constexpr int32_t kByteVocabSize = 257;
inline constexpr const char* kEndOfText = "<|endoftext|>";

std::unique_ptr<Tokenizer> make_byte_tokenizer();

}  // namespace onebit::data
