#include "onebit/hub/client.h"

#include <ctime>

#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/hub/url.h"

namespace onebit::hub {

namespace {

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::string first_line(const std::string& body) {
  std::string line = body.substr(0, body.find('\n'));
  return printable(line, 200);
}

}  // namespace

HubOptions hub_options_from_env(const std::string& token_flag, const EnvLookup& env,
                                const std::filesystem::path& working_dir) {
  HubOptions o;
  if (auto e = env("HF_ENDPOINT"); e && !e->empty()) {
    o.endpoint = *e;
    while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  }
  if (auto off = env("HF_HUB_OFFLINE")) o.offline = *off == "1" || *off == "true" || *off == "ON" || *off == "YES";
  o.token = resolve_token(token_flag, env, working_dir);
  return o;
}

HubClient::HubClient(HubOptions options, const std::atomic<bool>* cancel)
    : opts_(std::move(options)), http_(opts_.timeouts, cancel) {
  try {
    endpoint_origin_ = url_origin(opts_.endpoint);
  } catch (const Error& e) {
    fail("HF_ENDPOINT: ", e.what());
  }
}

HubClient::Fetched HubClient::fetch(const std::string& start_url, std::optional<uint64_t> range_start,
                                    const BodySink* sink) {
  if (opts_.offline) fail("HF_HUB_OFFLINE is set: onebit will not contact the Hub (", printable_url(start_url), ")");
  std::string url = start_url;
  for (int hop = 0;; ++hop) {
    HttpRequest req{url, {"User-Agent: onebit/0.1"}, range_start};
    // The token belongs to the Hub: a redirect to the storage host (or any other origin) goes
    // without it, as the storage URL carries its own signature.
    if (opts_.token && url_origin(url) == endpoint_origin_)
      req.headers.push_back("Authorization: Bearer " + opts_.token->value);
    Fetched f{http_.get(req, sink), url};
    if (f.result.error != TransferError::None || !is_redirect(f.result.status)) return f;
    const auto location = f.result.header("location");
    if (!location) return f;  // fail_response reports a redirect without a target
    if (hop >= opts_.max_redirects)
      fail_redacted(cat("more than ", opts_.max_redirects, " redirects from ", printable_url(start_url)));
    const std::string next = resolve_url(url, *location);
    const std::string scheme = url_scheme(next);
    if (scheme != "http" && scheme != "https")
      fail_redacted(cat("redirect from ", printable_url(url), " to a non-HTTP URL"));
    if (url_scheme(url) == "https" && scheme == "http")
      fail_redacted(cat("refusing a redirect from https to http (", printable_url(next), ")"));
    url = next;
  }
}

bool HubClient::retryable(const Fetched& f) const {
  const HttpResult& r = f.result;
  if (r.error == TransferError::Timeout || r.error == TransferError::Connection) return true;
  if (r.error != TransferError::None) return false;
  if ((r.status == 401 || r.status == 403) && url_origin(f.final_url) != endpoint_origin_) return true;
  return is_retryable_status(r.status);
}

std::optional<double> HubClient::retry_after(const HttpResult& r) {
  if (r.error != TransferError::None || (r.status != 429 && r.status != 503)) return std::nullopt;
  const auto v = r.header("retry-after");
  if (!v) return std::nullopt;
  return parse_retry_after(*v, std::time(nullptr));
}

std::string HubClient::describe(const Fetched& f) const {
  const HttpResult& r = f.result;
  if (r.error != TransferError::None)
    return cat(r.error_text.empty() ? "transfer failed" : r.error_text, " (", printable_url(f.final_url), ")");
  std::string s = cat("HTTP ", r.status, " from ", printable_url(f.final_url));
  if (!r.body.empty() && (r.status < 200 || r.status >= 300)) s += ": " + first_line(r.body);
  return s;
}

void HubClient::backoff(const std::string& what, const Fetched& f, int failed_attempts) const {
  const auto after = retry_after(f.result);
  const double delay = retry_delay(opts_.retry, failed_attempts, after);
  log_warn(redact(cat(what, ": ", describe(f), "; attempt ", failed_attempts, " of ", opts_.retry.max_attempts,
                      ", retrying in ", delay, " s", after ? " (Retry-After)" : ""),
                  opts_.token ? opts_.token->value : ""));
  retry_sleep(opts_.retry, delay);
}

void HubClient::fail_response(const std::string& what, const Fetched& f, int attempts) const {
  const HttpResult& r = f.result;
  const std::string tries = attempts > 1 ? cat(" after ", attempts, " attempts") : "";
  if (r.error == TransferError::None && (r.status == 401 || r.status == 403) &&
      url_origin(f.final_url) == endpoint_origin_) {
    fail_redacted(
        cat(what, ": access denied (", describe(f), "): accept the dataset's terms on the Hub or set HF_TOKEN",
            opts_.token ? cat(" (the token from ", opts_.token->source, " was refused)")
                        : " (no token found: --token, HF_TOKEN, HF_ACCESS_TOKEN, .env or the huggingface token file)"));
  }
  if (r.error == TransferError::None && r.status == 404) {
    fail_redacted(cat(what, ": not found (", describe(f), "): check the dataset id, revision and path",
                      opts_.token ? "" : "; a private dataset also needs HF_TOKEN"));
  }
  if (r.error == TransferError::None && is_redirect(r.status))
    fail_redacted(cat(what, ": redirect without a Location (", describe(f), ")"));
  fail_redacted(cat(what, ": ", describe(f), tries));
}

void HubClient::fail_redacted(const std::string& msg) const {
  throw Error(redact(msg, opts_.token ? opts_.token->value : ""));
}

HttpResult HubClient::get(const std::string& url, const std::string& what) {
  for (int attempt = 1;; ++attempt) {
    Fetched f = fetch(url, std::nullopt, nullptr);
    if (f.result.error == TransferError::None && f.result.status >= 200 && f.result.status < 300)
      return std::move(f.result);
    if (!retryable(f) || attempt >= opts_.retry.max_attempts) fail_response(what, f, attempt);
    backoff(what, f, attempt);
  }
}

}  // namespace onebit::hub
