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
};

std::unique_ptr<Normalizer> make_normalizer(const json& j, const std::string& where);

}  // namespace onebit::data::hf
