#pragma once
// URL helpers on top of libcurl's URL parser: escaping path segments, resolving a redirect's
// Location, comparing origins (the Authorization header only goes back to the same one), and a
// form of a URL that is safe to print (no query: storage URLs carry signatures there).
#include <string>
#include <string_view>

namespace onebit::hub {

// Percent-encodes everything but RFC 3986 unreserved characters, and '/' when keep_slash.
std::string url_escape(std::string_view s, bool keep_slash);

// scheme://host:port of an absolute http(s) URL, lower-cased with the default port made explicit;
// throws onebit::Error for anything else.
std::string url_origin(const std::string& url);
std::string url_scheme(const std::string& url);

// The absolute URL that `location` (absolute or relative) names when received for `base`.
std::string resolve_url(const std::string& base, const std::string& location);

// scheme://host[:port]/path: the query and any user:password are dropped, for messages and logs.
std::string printable_url(const std::string& url);

}  // namespace onebit::hub
