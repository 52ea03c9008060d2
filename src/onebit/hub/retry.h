#pragma once
// When to try a request again and how long to wait first: exponential backoff with jitter, the
// server's Retry-After when it sends one, and a bounded number of attempts. The clock is injectable
// so that tests check the waits without sleeping through them.
#include <ctime>
#include <functional>
#include <optional>
#include <string>

namespace onebit::hub {

struct RetryPolicy {
  int max_attempts = 8;                       // attempts in all, the first included
  double base_delay_s = 1.0;                  // the wait before the 2nd attempt is about this; it doubles after
  double max_delay_s = 60.0;                  // cap on the exponential wait
  double max_retry_after_s = 600.0;           // a Retry-After beyond this is clamped (a misbehaving server)
  std::function<void(double seconds)> sleep;  // default: std::this_thread::sleep_for
  std::function<double()> uniform01;          // default: a thread-local Mersenne twister
};

// The wait before attempt `failed_attempts + 1`, after `failed_attempts` (>= 1) failures. With a
// Retry-After it is that value (clamped); otherwise "equal jitter": half the exponential step fixed,
// half uniformly random, so that many clients hit by the same outage do not retry in lockstep.
double retry_delay(const RetryPolicy& policy, int failed_attempts, std::optional<double> retry_after_s);

// Sleeps with the policy's sleep function (or really sleeps when it has none).
void retry_sleep(const RetryPolicy& policy, double seconds);

// Retry-After as delta-seconds ("120") or an HTTP-date; nullopt when absent or unparseable.
std::optional<double> parse_retry_after(const std::string& value, std::time_t now);

// 408, 429 and every 5xx are worth another attempt; other statuses are final answers.
bool is_retryable_status(long status);

}  // namespace onebit::hub
