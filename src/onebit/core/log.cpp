#include "onebit/core/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace onebit {
namespace {
LogLevel initial_level() {
  const char* env = std::getenv("ONEBIT_LOG");
  if (!env) return LogLevel::Info;
  if (!std::strcmp(env, "error")) return LogLevel::Error;
  if (!std::strcmp(env, "warn")) return LogLevel::Warn;
  if (!std::strcmp(env, "debug")) return LogLevel::Debug;
  return LogLevel::Info;
}
LogLevel g_level = initial_level();
std::mutex g_mu;
}  // namespace

LogLevel log_level() { return g_level; }
void set_log_level(LogLevel level) { g_level = level; }

void log_line(LogLevel level, const std::string& msg) {
  static const char* names[] = {"error", "warn", "info", "debug"};
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "[onebit %s] %s\n", names[static_cast<int>(level)], msg.c_str());
  std::fflush(stderr);
}

}  // namespace onebit
