#pragma once
// Progress reporting for long work. On a TTY: one redrawn line with a bar, rate and ETA.
// Otherwise: a plain line at most every `plain_interval_s` seconds, so logs stay readable.
#include <chrono>
#include <cstdint>
#include <string>

namespace onebit {

class ProgressBar {
 public:
  // total = 0 means unknown (no bar, no ETA). unit is printed after the rate ("tok/s", "MB/s").
  ProgressBar(std::string label, uint64_t total, std::string unit, double unit_scale = 1.0);
  ~ProgressBar();
  // Sets the absolute progress and an optional free-form suffix (e.g. "loss 1.93").
  void update(uint64_t done, const std::string& suffix = "");
  void finish(const std::string& suffix = "");
  static bool stderr_is_tty();
  double plain_interval_s = 10.0;

 private:
  void draw(bool final_line);
  std::string label_, unit_, suffix_;
  uint64_t total_, done_ = 0;
  double unit_scale_;
  bool tty_, finished_ = false;
  bool drawn_current_ = false;  // the last draw showed done_/suffix_ as they are now
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);

}  // namespace onebit
