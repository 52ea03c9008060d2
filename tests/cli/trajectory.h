#pragma once
// The deterministic fields of each metrics.jsonl line as exact JSON text (doubles print round-trip),
// so two runs compare bitwise: what exact-resume tests hold an interrupted run to.
#include <string>
#include <vector>

#include "onebit/core/json_util.h"
#include "onebit/train/metrics_log.h"

namespace onebit::test {

inline std::vector<std::string> trajectory(const fs::path& run) {
  std::vector<std::string> v;
  for (const json& j : train::read_jsonl(run / "metrics.jsonl")) {
    json keep;
    for (const char* k : {"step", "loss", "lr", "grad_norm", "phase", "k", "w_neg", "w_zero", "w_pos", "tokens",
                          "val_loss", "val_bpb"})
      if (j.contains(k)) keep[k] = j[k];
    v.push_back(keep.dump());
  }
  return v;
}

}  // namespace onebit::test
