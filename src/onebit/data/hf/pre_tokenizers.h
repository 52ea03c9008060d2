#pragma once
// HF pre-tokenizers: ByteLevel, Split, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit,
// BertPreTokenizer, CharDelimiterSplit and Sequence.
#include <memory>
#include <string>

#include "onebit/core/json_util.h"
#include "onebit/data/hf/pieces.h"

namespace onebit::data::hf {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits (and possibly rewrites) every piece of `in` into `out` (cleared first).
  virtual void apply(const Pieces& in, Pieces& out) const = 0;
  // False only when the output is well-formed UTF-8 whatever bytes come in (ByteLevel without
  // its regex maps each byte on its own), so the input needs no repair.
  virtual bool needs_utf8() const { return true; }

  // What the pre-tokenizer does at a line start cut (tokenizer.h, is_line_start_cut): the text
  // "...G\n" + "L..." with G an ASCII graphic character and L an ASCII letter.
  enum class LineStart {
    // Every piece ends at the cut, and the pieces on each side are exactly those of that side
    // pre-tokenized alone (ByteLevel's GPT-2 regex, Split with a pattern of pretokenize_patterns.h, whitespace removal).
    Isolates,
    // Works on each incoming piece alone, whatever its position in the text: keeps a piece
    // boundary that an earlier step made, but does not make one.
    PerPiece,
    // Depends on where a piece sits in the text (Metaspace prepend_scheme "first").
    Unknown,
  };
  virtual LineStart line_start() const = 0;
};


// `where` names the file for errors; an unknown "type" is an error naming it.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const std::string& where);

SplitBehavior parse_split_behavior(const json& j, const std::string& where);

}  // namespace onebit::data::hf
