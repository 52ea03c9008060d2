#pragma once
// HF normalizers: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip and Sequence.
#include <memory>
#include <string>

#include "onebit/core/json_util.h"

namespace onebit::data::hf {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites `s` (valid UTF-8) in place.
  virtual void apply(std::string& s) const = 0;
  // True when normalizing "...G\n" and "L..." apart gives the two halves of normalizing the whole
  // (tokenizer.h, is_line_start_cut) and keeps G, '\n' and a letter there: Unicode normal forms and
  // lowercasing never reach across a '\n', and leave ASCII ASCII. Prepend and Strip act on the
  // ends of the text, and Replace may rewrite the cut itself.
  virtual bool keeps_line_start_cuts() const { return false; }
};

std::unique_ptr<Normalizer> make_normalizer(const json& j, const std::string& where);

}  // namespace onebit::data::hf
