#include "onebit/hub/retry.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

namespace onebit::hub {

double retry_delay(const RetryPolicy& p, int failed_attempts, std::optional<double> retry_after_s) {
  if (retry_after_s) return std::clamp(*retry_after_s, 0.0, p.max_retry_after_s);
  const int n = std::max(1, failed_attempts);
  const double step = std::min(p.max_delay_s, p.base_delay_s * std::ldexp(1.0, std::min(n - 1, 30)));
  double u;
  if (p.uniform01) {
    u = p.uniform01();
  } else {
    thread_local std::mt19937_64 gen{std::random_device{}()};
    u = std::uniform_real_distribution<double>(0.0, 1.0)(gen);
  }
  return step * 0.5 + step * 0.5 * std::clamp(u, 0.0, 1.0);
}

void retry_sleep(const RetryPolicy& p, double s) {
  if (p.sleep)
    p.sleep(s);
  else
    std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

std::optional<double> parse_retry_after(const std::string& value, std::time_t now) {
  size_t b = value.find_first_not_of(" \t");
  if (b == std::string::npos) return std::nullopt;
  const std::string v = value.substr(b, value.find_last_not_of(" \t\r\n") - b + 1);
  if (std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (v.size() > 9) return std::nullopt;
    return static_cast<double>(std::stol(v));
  }
  const std::time_t t = curl_getdate(v.c_str(), nullptr);  // RFC 7231 HTTP-date
  if (t < 0) return std::nullopt;
  return std::max(0.0, static_cast<double>(t - now));
}

bool is_retryable_status(long status) { return status == 408 || status == 429 || (status >= 500 && status <= 599); }

}  // namespace onebit::hub
