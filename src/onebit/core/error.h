#pragma once
// Errors: every user-facing failure is an onebit::Error whose message is one line naming the file,
// field or flag at fault. The CLI prints it as "onebit: error: <message>" and exits non-zero.
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace onebit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Concatenates anything with operator<< into one string (gcc 12 has no <format>).
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// Makes a name taken from an untrusted file or flag (a merge, a regex, a tensor name, a config key, a
// path) safe to put inside a one-line error: control characters and invalid UTF-8 bytes become
// \n, \t or \xNN escapes, and anything past `max_len` bytes is cut with "...". Use it as
// fail("... \"", printable(name), "\" ...").
std::string printable(std::string_view s, size_t max_len = 200);

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace onebit

// Invariant checks that stay on in Release: a wrong shape must never become a silent memory error.
#define OB_CHECK(cond, ...)                                   \
  do {                                                        \
    if (!(cond)) ::onebit::fail(__VA_ARGS__);                 \
  } while (0)
