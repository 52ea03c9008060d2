#pragma once
// A thin libcurl wrapper: one GET, no automatic redirects (the caller decides where the
// Authorization header may go), optional Range, timeouts for connecting and for a stalled body,
// and the body of a 2xx answer streamed to a sink (a file) while error bodies are kept for messages.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace onebit::hub {

struct HttpTimeouts {
  long connect_s = 20;
  // A transfer slower than low_speed_bytes per second for low_speed_s seconds is a timeout.
  long low_speed_bytes = 1024;
  long low_speed_s = 60;
};

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;     // "Name: value"
  std::optional<uint64_t> range_start;  // sends "Range: bytes=N-"
};

// How the transfer itself ended, apart from the HTTP status.
enum class TransferError {
  None,
  Timeout,     // connect or low-speed timeout
  Connection,  // refused, reset, dropped mid-body, DNS, TLS: the network, worth another attempt
  Aborted,     // the sink refused bytes or the cancel flag was raised: the caller knows why
  Fatal,       // malformed URL, unsupported protocol...: another attempt would fail the same way
};

struct HttpResult {
  long status = 0;                             // 0 when no response arrived
  std::map<std::string, std::string> headers;  // lower-case names of the final response
  std::string body;                            // a 2xx body without a sink; else the first 64 KiB
  uint64_t sink_bytes = 0;                     // bytes handed to the sink
  TransferError error = TransferError::None;
  std::string error_text;  // curl's description; never contains headers
  std::optional<std::string> header(const std::string& lower_name) const;
};

// Receives each chunk of a 2xx body together with the response's status and headers (a resumed
// download must know whether it got 206 or the whole file); returning false aborts the transfer
// (TransferError::Aborted).
using BodySink = std::function<bool(const HttpResult& head, const char* data, size_t n)>;

class HttpClient {
 public:
  explicit HttpClient(HttpTimeouts timeouts = {}, const std::atomic<bool>* cancel = nullptr);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // One request; redirects are returned as they are (3xx with a Location header).
  HttpResult get(const HttpRequest& request, const BodySink* sink = nullptr);

 private:
  void* curl_;  // CURL*, reused so connections stay alive between requests
  HttpTimeouts timeouts_;
  const std::atomic<bool>* cancel_;
};

}  // namespace onebit::hub
