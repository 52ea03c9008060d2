#pragma once
// HF post-processors for a single sequence: TemplateProcessing, BertProcessing, RobertaProcessing,
// ByteLevel (offsets only, so no change to ids) and Sequence.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "onebit/core/json_util.h"

namespace onebit::data::hf {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens of the single-sequence template around `ids`.
  virtual void add_special(std::vector<int32_t>& ids) const = 0;
  // The ids the template puts before the sequence (bos_id() looks here).
  virtual std::vector<int32_t> prefix_ids() const = 0;
};

// Every special-token id must be in [0, vocab_size) (the model vocab plus the added tokens): an id
// outside it would reach the model as a row it does not have.
std::unique_ptr<PostProcessor> make_post_processor(const json& j, int32_t vocab_size, const std::string& where);

}  // namespace onebit::data::hf
