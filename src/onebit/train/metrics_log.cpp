#include "onebit/train/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <sstream>

#include "onebit/core/error.h"

namespace onebit::train {

MetricsLog::MetricsLog(const fs::path& path, int64_t keep_up_to_step) : path_(path) {
  std::string kept;
  if (keep_up_to_step >= 0 && fs::exists(path)) {
    std::istringstream in(read_file(path));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception&) {
        break;  // a torn last line from a killed run: drop it and everything after
      }
      if (json_get_or<int64_t>(j, "step", 0, path.string()) > keep_up_to_step) continue;
      kept += line;
      kept += '\n';
    }
  }
  write_file_atomic(path, kept);
  f_ = std::fopen(path.c_str(), "ab");
  if (!f_) fail(path.string(), ": cannot open for appending: ", std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::append(const json& line) {
  std::string s = line.dump();
  s += '\n';
  if (std::fwrite(s.data(), 1, s.size(), f_) != s.size() || std::fflush(f_) != 0)
    fail(path_.string(), ": write failed: ", std::strerror(errno));
}

std::vector<json> read_jsonl(const fs::path& path) {
  std::istringstream in(read_file(path));
  std::vector<json> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::exception& e) {
      fail(path.string(), ":", n, ": invalid JSON: ", e.what());
    }
  }
  return out;
}

}  // namespace onebit::train
