#pragma once
// Where training batches come from. The trainer only sees this interface; its state() goes into
// trainer_state.json ("data") so that resume continues at exactly the same token.
#include <cstdint>
#include <memory>
#include <string>

#include "onebit/core/json_util.h"

namespace onebit::data {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Fills inputs[B*T] and targets[B*T] (targets = inputs shifted by one; -1 = ignore).
  virtual void next_batch(int B, int T, int32_t* inputs, int32_t* targets) = 0;
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

}  // namespace onebit::data
