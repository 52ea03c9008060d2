#include "onebit/data/hf/pieces.h"

#include <algorithm>

namespace onebit::data::hf {

void emit_split(std::string_view text, bool origin, const std::vector<Segment>& segments, SplitBehavior behavior,
                Pieces& out) {
  // (start, end, remove) after applying the behaviour, as in HF's fold over the matches.
  struct Out {
    size_t start, end;
    bool remove;
  };
  thread_local std::vector<Out> res;
  res.clear();
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const auto& s : segments) res.push_back({s.start, s.end, false});
      break;
    case SplitBehavior::Removed:
      for (const auto& s : segments) res.push_back({s.start, s.end, s.is_match});
      break;
    case SplitBehavior::Contiguous: {
      bool prev = false;
      for (const auto& s : segments) {
        if (s.is_match == prev && !res.empty()) res.back().end = s.end;
        else res.push_back({s.start, s.end, false});
        prev = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool prev = false;
      for (const auto& s : segments) {
        if (s.is_match && !prev && !res.empty()) res.back().end = s.end;
        else res.push_back({s.start, s.end, false});
        prev = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool prev = false;
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_match && !prev && !res.empty()) res.back().start = it->start;
        else res.push_back({it->start, it->end, false});
        prev = it->is_match;
      }
      std::reverse(res.begin(), res.end());
      break;
    }
  }
  for (const auto& r : res) {
    if (!r.remove) out.add(text.substr(r.start, r.end - r.start), origin && r.start == 0);
  }
}

}  // namespace onebit::data::hf
