#pragma once
// Shared by the trainer tests: the micro model they train (tiny, so a step takes milliseconds).
#include "onebit/model/config.h"

namespace onebit::train::testing {

inline model::ModelConfig micro_config(int hidden = 32) {
  model::ModelConfig c;
  c.vocab_size = 61;
  c.hidden_size = hidden;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.intermediate_size = 48;
  c.max_position_embeddings = 32;
  c.validate("micro");
  return c;
}

}  // namespace onebit::train::testing
