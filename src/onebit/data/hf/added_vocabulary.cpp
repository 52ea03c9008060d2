#include "onebit/data/hf/added_vocabulary.h"

#include <algorithm>
#include <cstring>

#include "onebit/data/hf/unicode.h"

namespace onebit::data::hf {
namespace {

char32_t last_codepoint(std::string_view s) {
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  size_t i = start;
  return next_codepoint(s, i);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>* tokens,
                                     std::vector<std::pair<std::string, int32_t>> patterns)
    : tokens_(tokens) {
  for (auto& [p, idx] : patterns) {
    if (p.empty()) continue;
    unsigned char f = static_cast<unsigned char>(p[0]);
    by_first_[f].emplace_back(std::move(p), idx);
    first_[f] = true;
    ++count_;
  }
  for (auto& v : by_first_) {
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
}

bool AddedTokenMatcher::find(std::string_view text, size_t from, size_t& start, size_t& end, int32_t& token) const {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = from; i < text.size(); ++i) {
    if (!first_[p[i]]) continue;
    for (const auto& [pat, idx] : by_first_[p[i]]) {
      if (text.size() - i >= pat.size() && std::memcmp(text.data() + i, pat.data(), pat.size()) == 0) {
        start = i;
        end = i + pat.size();
        token = idx;
        return true;
      }
    }
  }
  return false;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<AddedSplit>& out) const {
  out.clear();
  if (text.empty()) return;
  size_t offset = 0, search = 0;
  size_t s, e;
  int32_t idx;
  while (count_ && search < text.size() && find(text, search, s, e, idx)) {
    search = e;  // the matcher's iteration is non-overlapping even when a match is discarded
    const AddedToken& t = (*tokens_)[idx];
    if (t.single_word) {
      bool start_space = s == 0 || !is_word_char(last_codepoint(text.substr(0, s)));
      size_t k = e;
      bool stop_space = e == text.size() || !is_word_char(next_codepoint(text, k));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) {
      size_t ns = s;
      while (ns > 0) {
        size_t b = ns - 1;
        while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
        size_t k = b;
        if (!is_whitespace(next_codepoint(text, k))) break;
        ns = b;
      }
      s = std::max(ns, offset);
    }
    if (t.rstrip) {
      while (e < text.size()) {
        size_t k = e;
        if (!is_whitespace(next_codepoint(text, k))) break;
        e = k;
      }
      search = std::max(search, e);
    }
    if (s > offset) out.push_back({offset, s, -1});
    out.push_back({s, e, idx});
    offset = e;
  }
  if (offset != text.size()) out.push_back({offset, text.size(), -1});
}

}  // namespace onebit::data::hf
