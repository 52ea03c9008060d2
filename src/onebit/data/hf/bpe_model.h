#pragma once
// The HF BPE model: vocab + ranked merges, with byte_fallback, unk_token (fuse_unk),
// continuing_subword_prefix / end_of_word_suffix and ignore_merges. Words already seen are served
// from a per-thread cache, so the merge loop only runs once per distinct pre-token.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "onebit/core/json_util.h"

namespace onebit::data::hf {

// Token ids (model vocab and added tokens) must be below 2^24: the id → token table is dense, so an
// id near 2^31 would allocate 64 GiB, and the largest real vocabularies hold about 10^6 tokens.
inline constexpr int32_t kMaxTokenIds = 1 << 24;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using VocabMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// (left id, right id) → (rank, merged id), open addressing: the merge loop's hottest lookup.
class MergeMap {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    uint32_t rank = 0;
    int32_t merged = 0;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void reserve(size_t n);
  // Later duplicates replace earlier ones, as in HF's HashMap collect.
  void set(uint64_t key, uint32_t rank, int32_t merged);
  const Entry* find(uint64_t key) const {
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      const Entry& e = table_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_); }
  std::vector<Entry> table_ = std::vector<Entry>(16);
  size_t mask_ = 15;
  int shift_ = 60;
  size_t count_ = 0;
};

class BpeModel {
 public:
  BpeModel(const json& model, const std::string& where);

  // Appends the ids of one pre-token (non-empty, valid UTF-8).
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // Empty when id has no token in the model vocab.
  const std::string& id_to_token(int32_t id) const;
  // One past the largest id in the vocab.
  int32_t id_bound() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  void tokenize_cached(std::string_view word, std::vector<int32_t>& out) const;
  // Long words (SentencePiece-style tokenizers BPE a whole segment) are cut before each boundary
  // character ("▁" or " ") that no merge can ever join to the symbol on its left: HF's global merge
  // order then equals merging each chunk alone, and the chunks hit the word cache.
  void plan_chunking();
  bool cuttable(std::string_view word, size_t pos) const;

  struct Boundary {
    std::string text;
    std::unordered_set<char32_t> joins_after;  // chars c such that some token contains c + text
  };
  std::vector<Boundary> boundaries_;

  VocabMap vocab_;
  std::vector<std::string> id_to_token_;
  MergeMap merges_;
  std::optional<int32_t> unk_id_;
  std::string prefix_, suffix_;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  int32_t byte_ids_[256];  // ids of "<0xXX>" when byte_fallback and all are present, else -1
  uint64_t instance_;      // identifies this model in the per-thread caches
};

}  // namespace onebit::data::hf
