#pragma once
// Token sampling from one position's logits: repetition penalty over the recent history, then
// temperature, top-k, top-p (nucleus) and min-p over the remaining probability mass. A pure function
// of (logits, history, options, rng state), so the same seed gives the same text.
#include <cstdint>
#include <span>

#include "onebit/core/rng.h"

namespace onebit::infer {

struct SamplingOptions {
  float temperature = 0.8f;  // 0: greedy
  int top_k = 40;            // 0: no limit
  float top_p = 0.95f;       // 1: no limit
  float min_p = 0.0f;        // keep tokens with p >= min_p * p(most likely); 0: off
  // Logits of tokens among the last repeat_last_n of the history are divided by the penalty when
  // positive, multiplied when negative (the CTRL / llama.cpp rule); 1: off.
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
};

// Errors naming the option as the CLI spells it (--temperature, --top-k, --top-p, --min-p,
// --repeat-penalty, --repeat-last-n) unless temperature is finite and >= 0, top_k >= 0, top_p is in
// (0, 1], min_p in [0, 1), repeat_penalty finite and > 0, repeat_last_n >= 0.
void check_sampling_options(const SamplingOptions& opt);

// `history`: the ids seen so far (prompt and generated), for the repetition penalty.
int32_t sample_token(std::span<const float> logits, const SamplingOptions& opt, Rng& rng,
                     std::span<const int32_t> history = {});

}  // namespace onebit::infer
