#pragma once
// A connection to the Hub: the endpoint, the token, retries and timeouts. It follows redirects
// itself so that the Authorization header goes only to the endpoint's own origin (scheme, host and
// port), never to the storage host a download is redirected to, and it keeps the token out of
// every message it produces.
#include <atomic>
#include <optional>
#include <string>

#include "onebit/hub/http.h"
#include "onebit/hub/retry.h"
#include "onebit/hub/token.h"

namespace onebit::hub {

inline constexpr const char* kDefaultEndpoint = "https://huggingface.co";

struct HubOptions {
  std::string endpoint = kDefaultEndpoint;  // HF_ENDPOINT overrides it
  std::optional<HubToken> token;
  bool offline = false;  // HF_HUB_OFFLINE: every request is refused
  RetryPolicy retry;
  HttpTimeouts timeouts;
  int max_redirects = 10;
};

// Endpoint from HF_ENDPOINT, token by resolve_token(token_flag, env, working_dir), HF_HUB_OFFLINE.
HubOptions hub_options_from_env(const std::string& token_flag, const EnvLookup& env,
                                const std::filesystem::path& working_dir);

class HubClient {
 public:
  explicit HubClient(HubOptions options, const std::atomic<bool>* cancel = nullptr);

  const HubOptions& options() const { return opts_; }
  const std::string& endpoint() const { return opts_.endpoint; }

  struct Fetched {
    HttpResult result;
    std::string final_url;  // the URL that gave `result` after redirects
  };
  // One attempt: GET `url` (with "Range: bytes=N-" if range_start), following redirects.
  Fetched fetch(const std::string& url, std::optional<uint64_t> range_start, const BodySink* sink);

  // GET with retries of transient failures (timeouts, dropped connections, 408, 429, 5xx); returns
  // the 2xx result with its body in memory, or throws a one-line onebit::Error that names `what`.
  HttpResult get(const std::string& url, const std::string& what);

  // True when a failed attempt is worth repeating. A 401/403 from another origin than the Hub is a
  // storage URL whose signature expired or was refused: the next attempt resolves a fresh one.
  bool retryable(const Fetched& f) const;
  // Retry-After of a 429 or 503, in seconds.
  static std::optional<double> retry_after(const HttpResult& r);
  // Waits before attempt failed_attempts + 1, logging why (no token, no query string).
  void backoff(const std::string& what, const Fetched& f, int failed_attempts) const;

  // Throws the error for a failed attempt: 401/403 say to accept the terms or set a token.
  [[noreturn]] void fail_response(const std::string& what, const Fetched& f, int attempts) const;
  // Throws onebit::Error(msg) with the token (if any) replaced by ***.
  [[noreturn]] void fail_redacted(const std::string& msg) const;

 private:
  std::string describe(const Fetched& f) const;
  HubOptions opts_;
  std::string endpoint_origin_;
  HttpClient http_;
};

}  // namespace onebit::hub
