#pragma once
// Added tokens (HF AddedVocabulary): found in the text before the model runs, leftmost-longest
// like HF's Aho-Corasick matcher, with the lstrip / rstrip / single_word rules.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace onebit::data::hf {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  // What decode() emits: HF shows a normalized token as its normalized form.
  std::string piece;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// One piece of a split: an added token (token >= 0, an index into the token list) or plain text.
struct AddedSplit {
  size_t start, end;
  int32_t token;  // -1 for text
};

class AddedTokenMatcher {
 public:
  // patterns[i] is what token i looks like in the text being searched (its content, or its
  // normalized content for the post-normalization matcher); empty patterns never match.
  AddedTokenMatcher(const std::vector<AddedToken>* tokens, std::vector<std::pair<std::string, int32_t>> patterns);
  bool empty() const { return count_ == 0; }
  // HF find_matches: covers `text` with text and token splits (none when text is empty).
  void split(std::string_view text, std::vector<AddedSplit>& out) const;

 private:
  // Leftmost-longest match at or after `from`.
  bool find(std::string_view text, size_t from, size_t& start, size_t& end, int32_t& token) const;

  const std::vector<AddedToken>* tokens_;
  // By first byte: (pattern, token index), longest first.
  std::vector<std::pair<std::string, int32_t>> by_first_[256];
  bool first_[256] = {};
  size_t count_ = 0;
};

}  // namespace onebit::data::hf
