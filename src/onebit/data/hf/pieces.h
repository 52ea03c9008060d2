#pragma once
// The pre-tokenized form of one text segment: pieces stored back to back in one buffer, so the hot
// loop allocates nothing once the per-thread buffers have grown.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace onebit::data::hf {

struct Piece {
  uint32_t off, len;
  // The piece begins at offset 0 of the original text (HF's offsets_original().0 == 0), which
  // Metaspace's prepend_scheme "first" looks at.
  bool origin;
};

struct Pieces {
  std::string buf;
  std::vector<Piece> list;

  void clear() {
    buf.clear();
    list.clear();
  }
  std::string_view view(const Piece& p) const { return std::string_view(buf).substr(p.off, p.len); }
  void add(std::string_view s, bool origin) {
    if (s.empty()) return;  // HF drops empty splits
    list.push_back({static_cast<uint32_t>(buf.size()), static_cast<uint32_t>(s.size()), origin});
    buf.append(s);
  }
};

// How a split keeps the delimiters it found (HF SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// One region of a piece: a pattern match or the text between matches.
struct Segment {
  size_t start, end;
  bool is_match;
};

// Applies `behavior` to the segments of `text` (which cover it in order) and adds the resulting
// non-empty pieces to `out`, exactly as HF NormalizedString::split does.
void emit_split(std::string_view text, bool origin, const std::vector<Segment>& segments, SplitBehavior behavior,
                Pieces& out);

}  // namespace onebit::data::hf
