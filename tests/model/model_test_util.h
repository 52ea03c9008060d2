#pragma once
// Small configs and random batches shared by the model tests.
#include <cstdint>
#include <vector>

#include "onebit/core/rng.h"
#include "onebit/model/config.h"

namespace onebit::model::testing {

inline ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 13;
  c.hidden_size = 8;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.intermediate_size = 12;
  c.max_position_embeddings = 16;
  c.rope_theta = 10000.0f;
  c.rms_norm_eps = 1e-5f;
  c.qk_norm = true;
  c.sub_ln = true;
  c.residual_scale = 0.7f;
  c.tie_word_embeddings = false;
  c.dropout = 0.0f;
  return c;
}

struct Batch {
  int B, T;
  std::vector<int32_t> tokens, targets;
};

// Fresh random tokens; about one target in eight is ignored (-1).
inline Batch random_batch(const ModelConfig& c, int B, int T, uint64_t seed) {
  Rng rng(seed);
  Batch b{B, T, {}, {}};
  for (int i = 0; i < B * T; ++i) {
    b.tokens.push_back((int32_t)rng.uniform_int(c.vocab_size));
    b.targets.push_back(rng.uniform_int(8) == 0 ? -1 : (int32_t)rng.uniform_int(c.vocab_size));
  }
  return b;
}

}  // namespace onebit::model::testing
