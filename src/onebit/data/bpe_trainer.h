#pragma once
// Byte-level BPE training (`onebit tokenizer train`). The result is a Hugging Face tokenizer.json:
// Split(pre-tokenization regex, Isolated) + ByteLevel(use_regex=false) pre-tokenizer, BPE model with
// the 256 GPT-2 byte symbols as its alphabet (so every text encodes), ByteLevel decoder, and the
// special tokens first (ids 0..k-1) as added tokens.
//
// Algorithm: documents are pre-tokenized with PCRE2 and the words counted on all threads; then each
// merge takes the most frequent pair (ties: the smallest (left id, right id)) from a lazily updated
// max-heap, and only the words that contain it are rewritten, adjusting the pair counts by the
// difference (no recount per merge).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/core/json_util.h"
#include "onebit/data/pretokenize_patterns.h"

namespace onebit::data {

// kGpt2Pattern / kLlama3Pattern: the pre-tokenization patterns "gpt2" and "llama3" name.

struct BpeTrainOptions {
  std::vector<std::string> inputs;  // files / directories / "-" (see documents.h for formats)
  std::string text_field = "text";
  bool skip_bad_lines = false;
  uint32_t vocab_size = 8192;      // specials + 256 byte symbols + merges
  uint64_t min_frequency = 2;      // a pair seen fewer times than this is never merged
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  std::string pattern = "gpt2";    // "gpt2", "llama3", or a PCRE2 regex
  int threads = 0;
  bool progress = true;
};

struct BpeTrainResult {
  json tokenizer;  // the tokenizer.json object
  uint32_t vocab_size = 0;
  uint64_t merges = 0, words = 0, unique_words = 0, text_bytes = 0, documents = 0;
  double count_seconds = 0, merge_seconds = 0;
  bool stopped_by_min_frequency = false;
};

BpeTrainResult train_bpe(const BpeTrainOptions& opts);

// The core on already counted words (word bytes → count); used by train_bpe and tests.
// Returns merges as pairs of token byte strings, in order.
struct BpeMerges {
  std::vector<std::pair<std::string, std::string>> merges;
  bool stopped_by_min_frequency = false;
};
BpeMerges learn_bpe_merges(const std::vector<std::pair<std::string, uint64_t>>& words, uint64_t max_merges,
                           uint64_t min_frequency, const std::function<void(uint64_t)>& on_merge = {});

// Builds the tokenizer.json object from merges.
json bpe_tokenizer_json(const std::vector<std::pair<std::string, std::string>>& merges,
                        const std::vector<std::string>& special_tokens, const std::string& regex);

// "gpt2" / "llama3" → the pattern; anything else is returned as is (after a compile check).
std::string resolve_pretokenizer_pattern(const std::string& name_or_regex);

}  // namespace onebit::data
