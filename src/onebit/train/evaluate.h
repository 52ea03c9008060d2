#pragma once
// Held-out evaluation over a data::ValSource pass: mean cross-entropy (nats/token), perplexity, and
// bits per byte (bytes = UTF-8 length of each target token's text, so it compares across
// tokenizers; for the byte tokenizer it is loss / ln 2).
#include <cstdint>

#include "onebit/data/window_sources.h"
#include "onebit/model/transformer.h"

namespace onebit::train {

struct EvalResult {
  double loss = 0;  // nats per token
  double perplexity = 0;
  double bits_per_byte = 0;
  double nats_per_byte = 0;
  uint64_t tokens = 0;
  uint64_t bytes = 0;
  int64_t batches = 0;      // batches scored
  bool whole_pass = false;  // the pass reached the end of the held-out data
};

// Which target positions of each window of T are scored: [begin, end), end < 0 meaning T. The default
// scores all; {T/2, T-1} is what llama-perplexity -c T scores (the second half of each window, up
// to the window's last token), so that its perplexity and onebit's are over the same tokens.
struct ScoredPositions {
  int begin = 0;
  int end = -1;
};

// The first `max_batches` batches of B windows of T tokens of a full pass (max_batches <= 0: the
// whole pass). Always starts at the beginning of the held-out data, so evals are comparable.
// show_progress: a progress bar "eval" over the batches to score (for passes long enough to wait on).
EvalResult evaluate(model::Transformer& model, data::ValSource& val, int B, int T, int64_t max_batches,
                    bool show_progress = false, ScoredPositions positions = {});

}  // namespace onebit::train
