#pragma once
// Where training batches come from. The trainer only sees this interface; its state() goes into
// trainer_state.json ("data") so that resume continues at exactly the same token.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "onebit/core/json_util.h"

namespace onebit::data {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Fills inputs[B*T] and targets[B*T] (targets = inputs shifted by one; -1 = ignore).
  virtual void next_batch(int B, int T, int32_t* inputs, int32_t* targets) = 0;
  // Data parallelism: rows [row0, row0 + rows) of the next batch of B rows, that is the batch
  // next_batch(B, ...) would give, and the same state afterwards (inputs/targets hold rows x T). Each
  // rank takes its own rows of one global batch, so the ranks read disjoint windows and their union
  // is the batch one process with the whole batch reads. This default reads the whole batch and keeps
  // the rows; a source that can skip rows it does not keep overrides it.
  virtual void next_batch_rows(int B, int row0, int rows, int T, int32_t* inputs, int32_t* targets);
  virtual json state() const = 0;
  virtual void restore(const json& state) = 0;
  virtual std::string describe() const = 0;  // one line for logs: file, tokens, split
  // A finite source (a one-pass stream): true once no target is left; the trainer then finishes.
  // May block until it knows. The sources that loop over their data never end.
  virtual bool at_end() { return false; }
  // Fields added to the step's line of metrics.jsonl (a stream's time spent waiting for data, its
  // disk use); called once per step.
  virtual json step_metrics() { return json::object(); }
  // Appended to the training progress line (a stream's shards and bytes).
  virtual std::string progress() const { return {}; }
};

inline void BatchSource::next_batch_rows(int B, int row0, int rows, int T, int32_t* inputs, int32_t* targets) {
  std::vector<int32_t> in(static_cast<size_t>(B) * T), tg(in.size());
  next_batch(B, T, in.data(), tg.data());
  const size_t from = static_cast<size_t>(row0) * T, n = static_cast<size_t>(rows) * T;
  std::copy(in.begin() + from, in.begin() + from + n, inputs);
  std::copy(tg.begin() + from, tg.begin() + from + n, targets);
}

// The rows of one rank: next_batch(B, ...) gives rows [rank * B, rank * B + B) of the global batch of
// world * B rows drawn from `inner`. state()/restore() are the inner source's, so a checkpoint taken
// with any number of ranks resumes with any other at the same data position.
class RankRowsSource final : public BatchSource {
 public:
  RankRowsSource(std::unique_ptr<BatchSource> inner, int rank, int world)
      : inner_(std::move(inner)), rank_(rank), world_(world) {}
  void next_batch(int B, int T, int32_t* inputs, int32_t* targets) override {
    inner_->next_batch_rows(B * world_, B * rank_, B, T, inputs, targets);
  }
  json state() const override { return inner_->state(); }
  void restore(const json& state) override { inner_->restore(state); }
  std::string describe() const override {
    return inner_->describe() + " (rank " + std::to_string(rank_) + " of " + std::to_string(world_) + ": its rows of each batch)";
  }

 private:
  std::unique_ptr<BatchSource> inner_;
  int rank_, world_;
};

}  // namespace onebit::data
