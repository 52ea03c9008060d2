#include "onebit/hub/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include "onebit/core/error.h"

namespace onebit::hub {

namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) fail("libcurl initialisation failed");
  });
}

struct Transfer {
  HttpResult* result;
  const BodySink* sink;
  const std::atomic<bool>* cancel;
  bool sink_failed = false;
  bool to_sink() const { return sink && result->status >= 200 && result->status < 300; }
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    // A new status line (an interim 1xx, or the response itself): start the header set afresh.
    t->result->headers.clear();
    const size_t sp = line.find(' ');
    t->result->status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
  } else if (const size_t colon = line.find(':'); colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    size_t v = colon + 1;
    while (v < line.size() && (line[v] == ' ' || line[v] == '\t')) ++v;
    t->result->headers[name] = line.substr(v);
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->to_sink()) {
    if (!(*t->sink)(*t->result, data, bytes)) {
      t->sink_failed = true;
      return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    t->result->sink_bytes += bytes;
  } else if (t->result->status >= 200 && t->result->status < 300) {
    t->result->body.append(data, bytes);  // an API answer (a tree page of 1000 entries is ~250 KB)
  } else if (t->result->body.size() < kMaxErrorBody) {
    t->result->body.append(data, std::min(bytes, kMaxErrorBody - t->result->body.size()));
  }
  return bytes;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->cancel && t->cancel->load() ? 1 : 0;
}

TransferError classify(CURLcode c) {
  switch (c) {
    case CURLE_OK:
      return TransferError::None;
    case CURLE_OPERATION_TIMEDOUT:
      return TransferError::Timeout;
    case CURLE_WRITE_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
      return TransferError::Aborted;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
      return TransferError::Connection;
    default:
      return TransferError::Fatal;
  }
}

}  // namespace

std::optional<std::string> HttpResult::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

HttpClient::HttpClient(HttpTimeouts timeouts, const std::atomic<bool>* cancel)
    : curl_(nullptr), timeouts_(timeouts), cancel_(cancel) {
  global_init();
  curl_ = curl_easy_init();
  if (!curl_) fail("libcurl: cannot create a transfer handle");
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpResult HttpClient::get(const HttpRequest& req, const BodySink* sink) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);  // keeps the connection cache, forgets the previous request's options
  HttpResult result;
  Transfer t{&result, sink, cancel_};
  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  std::string range;
  if (req.range_start) range = std::to_string(*req.range_start) + "-";

  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (!range.empty()) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeouts_.connect_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, timeouts_.low_speed_bytes);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, timeouts_.low_speed_s);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);

  const CURLcode code = curl_easy_perform(c);
  curl_slist_free_all(headers);
  result.error = classify(code);
  if (code != CURLE_OK) result.error_text = curl_easy_strerror(code);
  return result;
}

}  // namespace onebit::hub
