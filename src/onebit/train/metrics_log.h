#pragma once
// <output>/metrics.jsonl: one JSON object per line (training steps, and eval lines with val_loss).
// On resume, lines with "step" > the resumed step are dropped (the file is rewritten atomically)
// before appending, so the log of a resumed run equals the log of an uninterrupted one.
#include <cstdio>

#include "onebit/core/fs.h"
#include "onebit/core/json_util.h"

namespace onebit::train {

class MetricsLog {
 public:
  // keep_up_to_step < 0: start a fresh log (any previous file is replaced).
  MetricsLog(const fs::path& path, int64_t keep_up_to_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void append(const json& line);  // flushed immediately
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  std::FILE* f_ = nullptr;
};

// Reads all objects of a metrics.jsonl (tests, benchmarks). Errors name the file and line.
std::vector<json> read_jsonl(const fs::path& path);

}  // namespace onebit::train
