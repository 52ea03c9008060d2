#include "onebit/core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "onebit/core/error.h"

namespace onebit {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", t / 60, t % 60);
  return buf;
}

bool ProgressBar::stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit, double unit_scale)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), unit_scale_(unit_scale),
      tty_(stderr_is_tty()), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (!finished_ && tty_ && done_ > 0) std::fputc('\n', stderr);
}

void ProgressBar::update(uint64_t done, const std::string& suffix) {
  done_ = done;
  suffix_ = suffix;
  drawn_current_ = false;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if ((tty_ && since >= 0.1) || (!tty_ && since >= plain_interval_s)) {
    last_draw_ = now;
    draw(false);
  }
}

void ProgressBar::finish(const std::string& suffix) {
  if (finished_) return;
  if (!suffix.empty()) suffix_ = suffix;
  // In a log, a final line identical in progress to the one just printed would be a duplicate; on
  // a TTY the final draw only redraws the line in place and ends it.
  if (tty_ || !drawn_current_ || !suffix.empty()) draw(true);
  finished_ = true;
}

void ProgressBar::draw(bool final_line) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done_) * unit_scale_ / elapsed : 0.0;
  std::string line = label_;
  if (total_ > 0) {
    double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    if (tty_) {
      const int width = 24;
      int filled = static_cast<int>(frac * width);
      line += " [" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
    }
    char buf[96];
    std::snprintf(buf, sizeof buf, " %llu/%llu %5.1f%%", static_cast<unsigned long long>(done_),
                  static_cast<unsigned long long>(total_), 100.0 * frac);
    line += buf;
    double eta = rate > 0 ? (static_cast<double>(total_ - std::min(done_, total_)) * unit_scale_) / rate : NAN;
    line += cat(" ", format_duration(elapsed), "<", final_line ? "00:00" : format_duration(eta));
  } else {
    line += cat(" ", done_, " ", format_duration(elapsed));
  }
  char rb[48];
  std::snprintf(rb, sizeof rb, " %.4g %s", rate, unit_.c_str());
  line += rb;
  if (!suffix_.empty()) line += " | " + suffix_;
  if (tty_)
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
  drawn_current_ = true;
}

}  // namespace onebit
