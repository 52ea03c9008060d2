#pragma once
// The tokenizer interface every part of onebit uses (training data, eval, generate, chat).
// Implementations: the built-in byte tokenizer (byte_tokenizer.h) and Hugging Face tokenizer.json
// (hf_tokenizer.h). Every tokenizer can serialize itself as a Hugging Face tokenizer.json, so a
// model dir always holds a tokenizer.json that both onebit and Python `tokenizers` load.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/core/json_util.h"

namespace onebit::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // add_special: apply the post-processor (e.g. a BOS template), as HF's add_special_tokens=True.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special = false) const = 0;
  // skip_special: drop special tokens, as HF's skip_special_tokens=True.
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special = false) const = 0;
  // Number of ids (model vocab + added tokens); every id is < vocab_size().
  virtual int32_t vocab_size() const = 0;
  // End-of-document token placed between documents in token files; nullopt if none is defined.
  virtual std::optional<int32_t> eos_id() const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  // The raw text of one token (for `onebit tokenizer encode` listings); may be lossy for bytes.
  virtual std::string id_to_piece(int32_t id) const = 0;
  // A complete Hugging Face tokenizer.json describing this tokenizer.
  virtual std::string to_json() const = 0;
  // Stable 64-bit hash of the tokenizer's identity (FNV-1a of its canonical JSON); recorded in
  // .tokens headers so data is never trained with a different tokenizer than it was made with.
  virtual uint64_t hash() const = 0;
  // True only when the tokenizer provably encodes text cut at a line start piecewise:
  // encode(a) + encode(b) == encode(a + b) whenever a ends with an ASCII graphic character and a
  // '\n' and b starts with an ASCII letter (the only places where document readers cut big plain-text
  // files, see is_line_start_cut). Readers encode a document whole when this is false, so a wrong
  // "false" only costs parallelism and a wrong "true" would change ids: implementations derive it
  // from their pipeline and stay conservative.
  virtual bool encodes_line_start_cuts_independently() const { return false; }
};

// Whether text[pos] is a line start as defined above: text[pos - 2] is ASCII graphic (not space),
// text[pos - 1] == '\n' and text[pos] is an ASCII letter.
bool is_line_start_cut(std::string_view text, size_t pos);

// "byte" → the built-in byte tokenizer; anything else is a path to a tokenizer.json, or a directory
// holding one (a model dir).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec);

// FNV-1a 64 over bytes; the canonical hash used by Tokenizer::hash().
uint64_t fnv1a64(std::string_view bytes);

// The hash every Tokenizer::hash() returns: fnv1a64 of the canonical form of its parsed
// tokenizer.json (keys sorted, no whitespace, UTF-8 as is). Defined on the parsed object, so a
// tokenizer and its own to_json() reloaded from disk hash the same whatever the file's formatting.
uint64_t tokenizer_json_hash(const json& tokenizer_json);
std::string canonical_json(const json& j);

// Hex form used in error messages and file names ("%016llx").
std::string hash_hex(uint64_t h);

}  // namespace onebit::data
