#pragma once
// Learning-rate and quantization schedules: pure functions of the step, so that a resumed run
// recomputes exactly the values the uninterrupted run used.
#include <cstdint>
#include <string>

#include "onebit/model/transformer.h"

namespace onebit::train {

enum class LrKind { Cosine, Linear, Constant };
LrKind lr_kind_from_string(const std::string& s);  // "cosine" | "linear" | "constant"; error names --schedule
const char* to_string(LrKind k);

struct LrSchedule {
  LrKind kind = LrKind::Cosine;
  double lr = 2e-3;        // peak
  double min_lr = 2e-4;    // floor reached at max_steps (cosine, linear)
  int64_t warmup_steps = 0;
  int64_t max_steps = 1;
  // lr for optimizer step `step` (0-based): linear warmup from lr/warmup to lr, then decay to min_lr.
  double at(int64_t step) const;
};

// full precision for [0, warmup) → soft (tanh, k rising geometrically from k_start to k_end) for
// [warmup, warmup + anneal) → hard QAT with int8 activations from then on.
struct QuantSchedule {
  int64_t warmup_steps = 0;
  int64_t anneal_steps = 0;
  double k_start = 1.0;
  double k_end = 100.0;
  model::QuantState at(int64_t step) const;
};

const char* to_string(model::QuantPhase p);  // "fp" | "soft" | "hard"
// The inverse of to_string; anything else is an error naming `where`.
model::QuantPhase quant_phase_from_string(const std::string& s, const std::string& where);

}  // namespace onebit::train
