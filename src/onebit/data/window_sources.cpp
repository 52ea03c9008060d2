#include "onebit/data/window_sources.h"

#include "onebit/core/error.h"

namespace onebit::data {

std::vector<uint32_t> token_byte_lengths(const Tokenizer& tok) {
  std::vector<uint32_t> out(static_cast<size_t>(tok.vocab_size()));
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    int32_t one[1] = {id};
    out[static_cast<size_t>(id)] = static_cast<uint32_t>(tok.decode(one, /*skip_special=*/true).size());
  }
  return out;
}

RandomWindowSource::RandomWindowSource(std::shared_ptr<const TokenSequence> tokens, uint64_t seed,
                                       std::string description)
    : tokens_(std::move(tokens)), rng_(mix_seed(seed, 0x7261696eULL)), description_(std::move(description)) {}

void RandomWindowSource::next_batch(int B, int T, int32_t* inputs, int32_t* targets) {
  next_batch_rows(B, 0, B, T, inputs, targets);
}

void RandomWindowSource::next_batch_rows(int B, int row0, int rows, int T, int32_t* inputs, int32_t* targets) {
  const uint64_t n = tokens_->size();
  if (n < static_cast<uint64_t>(T) + 1)
    fail(description_, ": the training split has ", n, " tokens, fewer than seq_len + 1 = ", T + 1);
  std::vector<int32_t> w(static_cast<size_t>(T) + 1);
  for (int b = 0; b < B; ++b) {
    uint64_t start = rng_.uniform_int(n - static_cast<uint64_t>(T));
    if (b < row0 || b >= row0 + rows) continue;  // another rank's row: drawn, not read
    const size_t at = static_cast<size_t>(b - row0) * T;
    tokens_->read(start, w.size(), w.data());
    std::copy(w.begin(), w.end() - 1, inputs + at);
    std::copy(w.begin() + 1, w.end(), targets + at);
  }
  ++batches_;
}

json RandomWindowSource::state() const {
  return json{{"kind", "random_windows"}, {"rng", rng_.state_string()}, {"batches", batches_}, {"tokens", tokens_->size()}};
}

void RandomWindowSource::restore(const json& s) {
  const std::string where = "data state";
  if (json_get<std::string>(s, "kind", where) != "random_windows")
    fail(where, ": saved for a \"", s.value("kind", "?"), "\" source, but the data is ", description_);
  uint64_t tokens = json_get<uint64_t>(s, "tokens", where);
  if (tokens != tokens_->size())
    fail(where, ": saved with a training split of ", tokens, " tokens, but ", description_, " has ", tokens_->size(),
         " (the data changed since the checkpoint)");
  rng_.set_state_string(json_get<std::string>(s, "rng", where));
  batches_ = json_get<uint64_t>(s, "batches", where);
}

ValSource::ValSource(std::shared_ptr<const TokenSequence> tokens, const Tokenizer& tok, std::string description)
    : tokens_(std::move(tokens)), token_bytes_(token_byte_lengths(tok)), description_(std::move(description)) {}

void ValSource::next_batch(int B, int T, int32_t* inputs, int32_t* targets) {
  const uint64_t n = tokens_->size();
  if (n < static_cast<uint64_t>(T) + 1)
    fail(description_, ": the validation split has ", n, " tokens, fewer than seq_len + 1 = ", T + 1);
  for (int b = 0; b < B; ++b) {
    if (pos_ + static_cast<uint64_t>(T) + 1 > n) pos_ = 0;
    std::vector<int32_t> w(static_cast<size_t>(T) + 1);
    tokens_->read(pos_, w.size(), w.data());
    std::copy(w.begin(), w.end() - 1, inputs + static_cast<size_t>(b) * T);
    std::copy(w.begin() + 1, w.end(), targets + static_cast<size_t>(b) * T);
    pos_ += static_cast<uint64_t>(T);
  }
}

json ValSource::state() const { return json{{"kind", "val_windows"}, {"pos", pos_}, {"tokens", tokens_->size()}}; }

void ValSource::restore(const json& s) {
  const std::string where = "val data state";
  if (json_get<std::string>(s, "kind", where) != "val_windows")
    fail(where, ": saved for a \"", s.value("kind", "?"), "\" source, but the data is ", description_);
  if (json_get<uint64_t>(s, "tokens", where) != tokens_->size())
    fail(where, ": the validation split changed since the checkpoint (", description_, ")");
  pos_ = json_get<uint64_t>(s, "pos", where);
}

uint64_t ValSource::eval_windows(int T) const {
  const uint64_t n = tokens_->size();
  if (n < 2) return 0;
  return (n - 1 + static_cast<uint64_t>(T) - 1) / static_cast<uint64_t>(T);
}

EvalBatch ValSource::next_eval(int B, int T, int32_t* inputs, int32_t* targets) {
  const uint64_t n = tokens_->size();
  EvalBatch eb;
  std::fill(inputs, inputs + static_cast<size_t>(B) * T, 0);
  std::fill(targets, targets + static_cast<size_t>(B) * T, -1);
  std::vector<int32_t> w(static_cast<size_t>(T) + 1);
  for (int b = 0; b < B && n >= 2 && eval_pos_ + 1 < n; ++b) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(static_cast<uint64_t>(T) + 1, n - eval_pos_));
    tokens_->read(eval_pos_, len, w.data());
    int32_t* in = inputs + static_cast<size_t>(b) * T;
    int32_t* tg = targets + static_cast<size_t>(b) * T;
    for (size_t i = 0; i + 1 < len; ++i) {
      in[i] = w[i];
      tg[i] = w[i + 1];
      eb.target_bytes += token_bytes_[static_cast<size_t>(w[i + 1])];
    }
    eb.target_tokens += len - 1;
    eval_pos_ += static_cast<uint64_t>(T);
    ++eb.rows;
  }
  return eb;
}

}  // namespace onebit::data
