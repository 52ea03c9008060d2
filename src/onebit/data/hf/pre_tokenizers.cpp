#include "onebit/data/hf/pre_tokenizers.h"

#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/data/hf/json_fields.h"
#include "onebit/data/byte_level.h"
#include "onebit/data/hf/regex.h"
#include "onebit/data/hf/unicode.h"
#include "onebit/data/pretokenize_patterns.h"

namespace onebit::data::hf {
namespace {

using LineStart = PreTokenizer::LineStart;

void regex_segments(const Regex& re, std::string_view text, bool invert, std::vector<Segment>& segs) {
  thread_local std::vector<Match> matches;
  re.find_all(text, matches);
  segs.clear();
  if (text.empty()) {
    segs.push_back({0, 0, false});
    return;
  }
  size_t prev = 0;
  for (const auto& m : matches) {
    if (prev != m.start) segs.push_back({prev, m.start, invert});
    segs.push_back({m.start, m.end, !invert});
    prev = m.end;
  }
  if (prev != text.size()) segs.push_back({prev, text.size(), invert});
}

// HF's `impl Pattern for Fn(char) -> bool`: every matching character is its own match.
template <typename Pred>
void char_segments(std::string_view text, Pred pred, std::vector<Segment>& segs) {
  segs.clear();
  if (text.empty()) {
    segs.push_back({0, 0, false});
    return;
  }
  size_t last = 0, i = 0;
  while (i < text.size()) {
    size_t b = i;
    char32_t c = next_codepoint(text, i);
    if (pred(c)) {
      if (last < b) segs.push_back({last, b, false});
      segs.push_back({b, i, true});
      last = i;
    }
  }
  if (text.size() > last) segs.push_back({last, text.size(), false});
}

class ByteLevelPre final : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, bool use_regex, const std::string& where)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) re_ = std::make_unique<Regex>(onig_to_pcre2(kGpt2Pattern), where + ": ByteLevel pre-tokenizer");
    for (int b = 0; b < 256; ++b) {
      const std::string& sym = byte_to_symbol(static_cast<uint8_t>(b));
      sym_len_[b] = static_cast<uint8_t>(sym.size());
      sym_[b][0] = sym[0];
      sym_[b][1] = sym.size() > 1 ? sym[1] : 0;
    }
  }
  bool needs_utf8() const override { return re_ != nullptr; }
  // The prefix space goes on every piece, so with it the second part of a cut text gets one that
  // the whole text does not.
  LineStart line_start() const override {
    return re_ && !add_prefix_space_ ? LineStart::Isolates : LineStart::PerPiece;
  }
  void apply(const Pieces& in, Pieces& out) const override {
    out.clear();
    thread_local std::string prefixed;
    thread_local std::vector<Segment> segs;
    thread_local std::vector<Match> matches;
    for (const auto& p : in.list) {
      std::string_view text = in.view(p);
      if (add_prefix_space_ && text[0] != ' ') {
        prefixed.assign(1, ' ');
        prefixed.append(text);
        text = prefixed;
      }
      if (!re_) {
        emit_mapped(text, p.origin, out);
        continue;
      }
      re_->find_all(text, matches);
      // Isolated: matches and the gaps between them all become pieces.
      size_t prev = 0;
      for (const auto& m : matches) {
        if (prev != m.start) emit_mapped(text.substr(prev, m.start - prev), p.origin && prev == 0, out);
        emit_mapped(text.substr(m.start, m.end - m.start), p.origin && m.start == 0, out);
        prev = m.end;
      }
      if (prev != text.size()) emit_mapped(text.substr(prev), p.origin && prev == 0, out);
    }
  }

 private:
  void emit_mapped(std::string_view s, bool origin, Pieces& out) const {
    if (s.empty()) return;
    size_t off = out.buf.size();
    out.buf.resize(off + 2 * s.size());
    char* dst = out.buf.data() + off;
    for (unsigned char c : s) {
      // Symbols are one or two bytes; writing both and advancing by the length avoids a branch.
      dst[0] = sym_[c][0];
      dst[1] = sym_[c][1];
      dst += sym_len_[c];
    }
    size_t len = static_cast<size_t>(dst - (out.buf.data() + off));
    out.buf.resize(off + len);
    out.list.push_back({static_cast<uint32_t>(off), static_cast<uint32_t>(len), origin});
  }
  bool add_prefix_space_;
  std::unique_ptr<Regex> re_;
  char sym_[256][2];
  uint8_t sym_len_[256];
};

// Split and the character-class splitters (Digits, Punctuation, WhitespaceSplit, ...): find the
// delimiters of each piece, then keep or drop them as `behavior` says.
class SplitPre final : public PreTokenizer {
 public:
  using Segmenter = std::function<void(std::string_view, std::vector<Segment>&)>;
  SplitPre(Segmenter segmenter, SplitBehavior b, LineStart line_start)
      : segmenter_(std::move(segmenter)), behavior_(b), line_start_(line_start) {}
  LineStart line_start() const override { return line_start_; }
  void apply(const Pieces& in, Pieces& out) const override {
    out.clear();
    thread_local std::vector<Segment> segs;
    for (const auto& p : in.list) {
      std::string_view text = in.view(p);
      segmenter_(text, segs);
      emit_split(text, p.origin, segs, behavior_, out);
    }
  }

 private:
  Segmenter segmenter_;
  SplitBehavior behavior_;
  LineStart line_start_;
};

std::unique_ptr<PreTokenizer> regex_split(const std::string& pattern, SplitBehavior b, bool invert,
                                          LineStart line_start, const std::string& where) {
  auto re = std::make_shared<const Regex>(pattern, where);
  return std::make_unique<SplitPre>(
      [re, invert](std::string_view text, std::vector<Segment>& segs) { regex_segments(*re, text, invert, segs); }, b,
      line_start);
}

std::unique_ptr<PreTokenizer> char_split(std::function<bool(char32_t)> pred, SplitBehavior b,
                                         LineStart line_start = LineStart::PerPiece) {
  return std::make_unique<SplitPre>(
      [pred = std::move(pred)](std::string_view text, std::vector<Segment>& segs) { char_segments(text, pred, segs); },
      b, line_start);
}

enum class Prepend { Always, First, Never };

class MetaspacePre final : public PreTokenizer {
 public:
  MetaspacePre(char32_t replacement, Prepend scheme, bool split)
      : replacement_(replacement), scheme_(scheme), split_(split) {
    append_utf8(rep_, replacement);
  }
  LineStart line_start() const override { return scheme_ == Prepend::First ? LineStart::Unknown : LineStart::PerPiece; }
  void apply(const Pieces& in, Pieces& out) const override {
    out.clear();
    thread_local std::string s;
    thread_local std::vector<Segment> segs;
    for (const auto& p : in.list) {
      std::string_view text = in.view(p);
      s.clear();
      for (char c : text) {
        if (c == ' ') s += rep_;
        else s += c;
      }
      bool starts = std::string_view(s).substr(0, rep_.size()) == rep_;
      if (!starts && (scheme_ == Prepend::Always || (scheme_ == Prepend::First && p.origin))) s.insert(0, rep_);
      if (!split_) {
        out.add(s, p.origin);
        continue;
      }
      char32_t r = replacement_;
      char_segments(s, [r](char32_t c) { return c == r; }, segs);
      emit_split(s, p.origin, segs, SplitBehavior::MergedWithNext, out);
    }
  }

 private:
  char32_t replacement_;
  std::string rep_;
  Prepend scheme_;
  bool split_;
};

class SequencePre final : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  bool needs_utf8() const override {
    // Every step sees the previous one's output, so only the first sees the raw input.
    return steps_.empty() || steps_.front()->needs_utf8();
  }
  // Only the first step sees the cut inside one piece; once it has isolated the cut, later steps
  // only ever see the pieces on either side, so they just must not depend on position.
  LineStart line_start() const override {
    bool per_piece = true;
    for (const auto& s : steps_) per_piece = per_piece && s->line_start() != LineStart::Unknown;
    if (!per_piece) return LineStart::Unknown;
    return !steps_.empty() && steps_.front()->line_start() == LineStart::Isolates ? LineStart::Isolates
                                                                                  : LineStart::PerPiece;
  }
  void apply(const Pieces& in, Pieces& out) const override {
    if (steps_.empty()) {
      out = in;
      return;
    }
    thread_local std::deque<Pieces> scratch;
    // Nested sequences each need their own pair of buffers.
    thread_local size_t depth = 0;
    if (scratch.size() < 2 * (depth + 1)) scratch.resize(2 * (depth + 1));
    Pieces* a = &scratch[2 * depth];
    Pieces* b = &scratch[2 * depth + 1];
    ++depth;
    try {
      const Pieces* src = &in;
      for (size_t i = 0; i < steps_.size(); ++i) {
        Pieces* dst = i + 1 == steps_.size() ? &out : (src == a ? b : a);
        steps_[i]->apply(*src, *dst);
        src = dst;
      }
    } catch (...) {
      --depth;
      throw;
    }
    --depth;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace

SplitBehavior parse_split_behavior(const json& j, const std::string& where) {
  if (!j.is_string()) fail(where, ": \"behavior\" must be a string (got ", json_excerpt(j), ")");
  const std::string& b = j.get_ref<const std::string&>();
  if (b == "Removed") return SplitBehavior::Removed;
  if (b == "Isolated") return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return SplitBehavior::Contiguous;
  fail(where, ": unknown split behavior \"", printable(b), "\"");
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const std::string& where) {
  std::string type = json_get<std::string>(j, "type", where + ": pre_tokenizer");
  std::string w = where + ": pre_tokenizer " + printable(type);
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPre>(json_get_or<bool>(j, "add_prefix_space", true, w),
                                          json_get_or<bool>(j, "use_regex", true, w), where);
  }
  if (type == "Split") {
    const json& pattern = json_get<json>(j, "pattern", w);
    const SplitBehavior behavior = parse_split_behavior(json_get<json>(j, "behavior", w), w);
    const bool invert = json_get_or<bool>(j, "invert", false, w);
    const bool isolates = behavior == SplitBehavior::Isolated && !invert && pattern.is_object() &&
                          pattern.contains("Regex") && pattern["Regex"].is_string() &&
                          line_start_isolating_pattern(pattern["Regex"].get_ref<const std::string&>());
    return regex_split(pattern_to_regex(pattern, w), behavior, invert,
                       isolates ? LineStart::Isolates : LineStart::PerPiece, w);
  }
  if (type == "Metaspace") {
    char32_t rep = single_char(json_get_or<std::string>(j, "replacement", "\xE2\x96\x81", w), w + " replacement");
    Prepend scheme = Prepend::Always;
    if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null()) {
      std::string s = json_get<std::string>(j, "prepend_scheme", w);
      if (s == "always") scheme = Prepend::Always;
      else if (s == "first") scheme = Prepend::First;
      else if (s == "never") scheme = Prepend::Never;
      else fail(w, ": unknown prepend_scheme \"", printable(s), "\"");
    } else if (!json_get_or<bool>(j, "add_prefix_space", true, w)) {
      scheme = Prepend::Never;
    }
    return std::make_unique<MetaspacePre>(rep, scheme, json_get_or<bool>(j, "split", true, w));
  }
  if (type == "Digits") {
    bool individual = json_get_or<bool>(j, "individual_digits", false, w);
    return char_split([](char32_t c) { return c >= '0' && c <= '9'; },
                                          individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  }
  if (type == "Punctuation") {
    SplitBehavior b = j.contains("behavior") ? parse_split_behavior(j["behavior"], w) : SplitBehavior::Isolated;
    return char_split(is_punctuation, b);
  }
  if (type == "Whitespace") {
    // HF compiles this one with the Rust regex crate, whose \w and \s are these properties.
    return regex_split(
        R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\p{White_Space}]+)",
        SplitBehavior::Removed, true, LineStart::Isolates, w);
  }
  // Whitespace removed as a delimiter: the '\n' vanishes and words on each side stand alone.
  if (type == "WhitespaceSplit") {
    return char_split(is_whitespace, SplitBehavior::Removed, LineStart::Isolates);
  }
  if (type == "CharDelimiterSplit") {
    char32_t d = single_char(json_get<std::string>(j, "delimiter", w), w + " delimiter");
    return char_split([d](char32_t c) { return c == d; }, SplitBehavior::Removed,
                                          d == U'\n' ? LineStart::Isolates : LineStart::PerPiece);
  }
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    steps.push_back(char_split(is_whitespace, SplitBehavior::Removed, LineStart::Isolates));
    steps.push_back(char_split(is_punctuation, SplitBehavior::Isolated));
    return std::make_unique<SequencePre>(std::move(steps));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& s : json_array(j, "pretokenizers", w)) steps.push_back(make_pre_tokenizer(s, where));
    return std::make_unique<SequencePre>(std::move(steps));
  }
  fail(where, ": unsupported pre_tokenizer type \"", printable(type), "\"");
}

}  // namespace onebit::data::hf
