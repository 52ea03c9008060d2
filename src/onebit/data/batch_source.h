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
};

}  // namespace onebit::data
