#pragma once
// Hugging Face tokenizer.json, encoded and decoded with the same ids as the Python `tokenizers`
// package. Supported: model BPE; normalizers NFC/NFD/NFKC/NFKD, Lowercase, Prepend, Replace, Strip,
// Sequence; pre-tokenizers ByteLevel, Split, Metaspace, Digits, Punctuation, Whitespace,
// WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit, Sequence; post-processors ByteLevel,
// TemplateProcessing, Bert/RobertaProcessing, Sequence; decoders ByteLevel, Metaspace,
// ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence. Anything else is an error naming the
// component and the file.
//
// Text that is not valid UTF-8 is first repaired: each maximal ill-formed subsequence becomes
// U+FFFD, exactly as Python's bytes.decode("utf-8", "replace") (HF itself only takes str). The one
// exception is a pure byte-level pipeline (no normalizer, ByteLevel pre-tokenizer without regex,
// no lstrip/rstrip/single_word tokens), such as the built-in byte tokenizer's JSON: it keeps the
// bytes as they are, and its ByteLevel decode returns raw bytes (no U+FFFD), so it gives the byte
// tokenizer's ids and text for any input.
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/data/tokenizer.h"

namespace onebit::data {

class HfTokenizer : public Tokenizer {
 public:
  // Encodes many texts on `threads` threads (0: all OpenMP threads); same ids as encode().
  virtual std::vector<std::vector<int32_t>> encode_batch(std::span<const std::string_view> texts,
                                                         bool add_special = false, int threads = 0) const = 0;
};

std::unique_ptr<HfTokenizer> load_hf_tokenizer(const onebit::fs::path& file);
// `where` names the source (a file path) in error messages.
std::unique_ptr<HfTokenizer> parse_hf_tokenizer(std::string_view json_text, const std::string& where);

}  // namespace onebit::data
