#pragma once
// Batch sources over a fixed token sequence.
//   RandomWindowSource: training; each row is a window of T+1 tokens at a uniformly random start
//     (seeded xoshiro; its state is the whole sampler state, so resume is bit-exact).
//   ValSource: validation; consecutive windows in order. Window k has inputs [kT, kT+T) and targets
//     [kT+1, kT+T+1), so a full pass predicts every token after the first exactly once.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "onebit/core/rng.h"
#include "onebit/data/batch_source.h"
#include "onebit/data/token_sequence.h"
#include "onebit/data/tokenizer.h"

namespace onebit::data {

class RandomWindowSource final : public BatchSource {
 public:
  RandomWindowSource(std::shared_ptr<const TokenSequence> tokens, uint64_t seed, std::string description);
  void next_batch(int B, int T, int32_t* inputs, int32_t* targets) override;
  // Draws all B starts (the same stream as next_batch) and reads only the kept rows' windows.
  void next_batch_rows(int B, int row0, int rows, int T, int32_t* inputs, int32_t* targets) override;
  json state() const override;
  void restore(const json& state) override;
  std::string describe() const override { return description_; }

 private:
  std::shared_ptr<const TokenSequence> tokens_;
  Rng rng_;
  uint64_t batches_ = 0;
  std::string description_;
};

struct EvalBatch {
  int rows = 0;                // windows filled (0: the pass is over)
  uint64_t target_tokens = 0;  // targets != -1 in this batch
  uint64_t target_bytes = 0;   // UTF-8 bytes those targets decode to (specials count 0)
};

class ValSource final : public BatchSource {
 public:
  ValSource(std::shared_ptr<const TokenSequence> tokens, const Tokenizer& tok, std::string description);

  // BatchSource: the next consecutive windows, wrapping to the start at the end (for a quick val
  // loss during training).
  void next_batch(int B, int T, int32_t* inputs, int32_t* targets) override;
  json state() const override;
  void restore(const json& state) override;
  std::string describe() const override { return description_; }

  // A full evaluation pass, independent of next_batch's position: call reset_eval(), then
  // next_eval(B, T, ...) until it returns rows == 0. Rows past `rows` and positions past the end
  // of the data get target -1 (input 0). Sum target_tokens/target_bytes for loss per token and
  // bits per byte = sum(loss_nats) / (ln 2 * sum(target_bytes)).
  void reset_eval() { eval_pos_ = 0; }
  // Back to the first window for both next_batch and next_eval.
  void reset() { pos_ = 0; eval_pos_ = 0; }
  EvalBatch next_eval(int B, int T, int32_t* inputs, int32_t* targets);
  // Windows in one full pass with sequence length T.
  uint64_t eval_windows(int T) const;
  uint64_t tokens() const { return tokens_->size(); }
  // Bytes token `id` decodes to (0 for special tokens).
  uint32_t token_bytes(int32_t id) const { return token_bytes_.at(static_cast<size_t>(id)); }

 private:
  std::shared_ptr<const TokenSequence> tokens_;
  std::vector<uint32_t> token_bytes_;
  uint64_t pos_ = 0;       // next_batch's next window start (token index)
  uint64_t eval_pos_ = 0;  // next_eval's next window start
  std::string description_;
};

// Bytes each token decodes to on its own (skip_special), indexed by id.
std::vector<uint32_t> token_byte_lengths(const Tokenizer& tok);

}  // namespace onebit::data
