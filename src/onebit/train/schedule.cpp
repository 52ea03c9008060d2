#include "onebit/train/schedule.h"

#include <algorithm>
#include <cmath>

#include "onebit/core/error.h"

namespace onebit::train {

LrKind lr_kind_from_string(const std::string& s) {
  if (s == "cosine") return LrKind::Cosine;
  if (s == "linear") return LrKind::Linear;
  if (s == "constant") return LrKind::Constant;
  fail("--schedule: unknown learning-rate schedule \"", s, "\" (expected cosine, linear or constant)");
}

const char* to_string(LrKind k) {
  switch (k) {
    case LrKind::Cosine: return "cosine";
    case LrKind::Linear: return "linear";
    case LrKind::Constant: return "constant";
  }
  return "?";
}

double LrSchedule::at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps)
    return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (kind == LrKind::Constant) return lr;
  const int64_t span = std::max<int64_t>(1, max_steps - warmup_steps);
  const double p = std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(span), 0.0, 1.0);
  if (kind == LrKind::Linear) return lr - (lr - min_lr) * p;
  return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * p));
}

model::QuantState QuantSchedule::at(int64_t step) const {
  using model::QuantPhase;
  if (step < warmup_steps) return {QuantPhase::FullPrecision, 0.0f};
  if (step < warmup_steps + anneal_steps) {
    const double p = static_cast<double>(step - warmup_steps) / static_cast<double>(anneal_steps);
    return {QuantPhase::Soft, static_cast<float>(k_start * std::pow(k_end / k_start, p))};
  }
  return {QuantPhase::Hard, 0.0f};
}

const char* to_string(model::QuantPhase p) {
  switch (p) {
    case model::QuantPhase::FullPrecision: return "fp";
    case model::QuantPhase::Soft: return "soft";
    case model::QuantPhase::Hard: return "hard";
  }
  return "?";
}

model::QuantPhase quant_phase_from_string(const std::string& s, const std::string& where) {
  for (auto p : {model::QuantPhase::FullPrecision, model::QuantPhase::Soft, model::QuantPhase::Hard})
    if (s == to_string(p)) return p;
  fail(where, ": unknown quantization phase \"", printable(s), "\" (expected fp, soft or hard)");
}

}  // namespace onebit::train
