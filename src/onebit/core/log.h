#pragma once
// Logging to stderr. Level from ONEBIT_LOG (error|warn|info|debug), default info.
#include <string>

#include "onebit/core/error.h"

namespace onebit {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

LogLevel log_level();
void set_log_level(LogLevel level);
void log_line(LogLevel level, const std::string& msg);

template <typename... Args> void log_info(const Args&... a) { if (log_level() >= LogLevel::Info) log_line(LogLevel::Info, cat(a...)); }
template <typename... Args> void log_warn(const Args&... a) { if (log_level() >= LogLevel::Warn) log_line(LogLevel::Warn, cat(a...)); }
template <typename... Args> void log_debug(const Args&... a) { if (log_level() >= LogLevel::Debug) log_line(LogLevel::Debug, cat(a...)); }

}  // namespace onebit
