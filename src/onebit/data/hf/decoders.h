#pragma once
// HF decoders: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder and Sequence.
// Each rewrites the list of token strings (HF decode_chain); the tokenizer joins the result.
#include <memory>
#include <string>
#include <vector>

#include "onebit/core/json_util.h"

namespace onebit::data::hf {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

std::unique_ptr<Decoder> make_decoder(const json& j, const std::string& where);

// Rust String::from_utf8_lossy: each maximal ill-formed subsequence becomes U+FFFD.
std::string utf8_lossy(std::string_view bytes);

}  // namespace onebit::data::hf
