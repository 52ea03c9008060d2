#pragma once
// Token sampling from one position's logits: temperature, then top-k, then top-p (nucleus) over the
// remaining probability mass. A pure function of (logits, options, rng state), so the same seed
// gives the same text.
#include <cstdint>
#include <span>

#include "onebit/core/rng.h"

namespace onebit::infer {

struct SamplingOptions {
  float temperature = 0.8f;  // 0: greedy
  int top_k = 40;            // 0: no limit
  float top_p = 0.95f;       // 1: no limit
};

// Errors naming the option as the CLI spells it (--temperature, --top-k, --top-p) unless temperature is finite and >= 0, top_k >= 0 and top_p is in (0, 1].
void check_sampling_options(const SamplingOptions& opt);

int32_t sample_token(std::span<const float> logits, const SamplingOptions& opt, Rng& rng);

}  // namespace onebit::infer
