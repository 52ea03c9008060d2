#include "onebit/hub/url.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>

#include "onebit/core/error.h"

namespace onebit::hub {

namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

UrlHandle parse(const std::string& url) {
  UrlHandle h(curl_url());
  if (!h) fail("out of memory parsing a URL");
  if (curl_url_set(h.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    fail("invalid URL \"", printable(url.substr(0, url.find('?'))), "\"");
  return h;
}

std::string part(CURLU* u, CURLUPart which, unsigned flags = 0) {
  char* s = nullptr;
  if (curl_url_get(u, which, &s, flags) != CURLUE_OK || !s) return "";
  std::string out(s);
  curl_free(s);
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

std::string url_escape(std::string_view s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    const bool unreserved = std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string url_scheme(const std::string& url) { return lower(part(parse(url).get(), CURLUPART_SCHEME)); }

std::string url_origin(const std::string& url) {
  UrlHandle h = parse(url);
  const std::string scheme = lower(part(h.get(), CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") fail("URL \"", printable(printable_url(url)), "\" is not http or https");
  return scheme + "://" + lower(part(h.get(), CURLUPART_HOST)) + ":" +
         part(h.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
}

std::string resolve_url(const std::string& base, const std::string& location) {
  UrlHandle h = parse(base);
  // With a URL already set, curl resolves a relative one against it (RFC 3986 section 5).
  if (curl_url_set(h.get(), CURLUPART_URL, location.c_str(), 0) != CURLUE_OK)
    fail("invalid redirect Location \"", printable(location.substr(0, location.find('?'))), "\"");
  return part(h.get(), CURLUPART_URL);
}

std::string printable_url(const std::string& url) {
  UrlHandle h(curl_url());
  if (!h || curl_url_set(h.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    return printable(url.substr(0, url.find_first_of("?#")));
  std::string out = part(h.get(), CURLUPART_SCHEME) + "://" + part(h.get(), CURLUPART_HOST);
  const std::string port = part(h.get(), CURLUPART_PORT);
  if (!port.empty()) out += ":" + port;
  out += part(h.get(), CURLUPART_PATH);
  return printable(out);
}

}  // namespace onebit::hub
