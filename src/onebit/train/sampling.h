#pragma once
// A plain reference sampler (the fast runtime's sampler lives in infer/, a later issue):
// temperature, then top-k, then top-p (nucleus) over the remaining probability mass.
#include <cstdint>
#include <span>

#include "onebit/core/rng.h"

namespace onebit::train {

struct SamplingOptions {
  float temperature = 0.8f;  // 0: greedy
  int top_k = 40;            // 0: no limit
  float top_p = 0.95f;       // 1: no limit
};

int32_t sample_token(std::span<const float> logits, const SamplingOptions& opt, Rng& rng);

}  // namespace onebit::train
