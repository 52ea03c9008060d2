#pragma once
// One batch drawn from a BatchSource, comparable as a whole (for resume / determinism checks).
#include <cstdint>
#include <vector>

#include "onebit/data/batch_source.h"

namespace onebit::data::testing {

struct Batch {
  std::vector<int32_t> in, tg;
  bool operator==(const Batch&) const = default;
};

inline Batch draw(BatchSource& s, int B, int T) {
  Batch b{std::vector<int32_t>(static_cast<size_t>(B) * T), std::vector<int32_t>(static_cast<size_t>(B) * T)};
  s.next_batch(B, T, b.in.data(), b.tg.data());
  return b;
}

}  // namespace onebit::data::testing
