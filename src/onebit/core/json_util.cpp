#include "onebit/core/json_util.h"

namespace onebit {

json read_json_file(const fs::path& path) {
  const std::string name = printable(path.string(), 4096);
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail(name, ": is a directory, expected a JSON file");
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    // libstdc++ reports some read failures (e.g. EISDIR on a special file) as ios_base::failure.
    fail(name, ": cannot read (", printable(e.what()), ")");
  }
  return parse_json_text(text, name);
}

json parse_json_text(std::string_view text, const std::string& where) {
  auto limit_depth = [&](int depth, json::parse_event_t event, json&) {
    if (depth > kMaxJsonDepth && (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start))
      fail(where, ": not valid JSON (nested deeper than ", kMaxJsonDepth, " levels)");
    return true;
  };
  try {
    return json::parse(text, limit_depth);
  } catch (const json::parse_error& e) {
    fail(where, ": not valid JSON (byte ", e.byte, ")");
  } catch (const json::exception& e) {
    // nlohmann rejects numbers beyond a double ("1e999") with out_of_range, not parse_error.
    fail(where, ": not valid JSON (", printable(e.what()), ")");
  }
}

std::string json_excerpt(const json& v) {
  // Arrays and objects are named, not dumped: an error message needs no more, and dump() recurses.
  if (v.is_structured()) return cat("an ", v.type_name(), " of ", v.size(), v.size() == 1 ? " item" : " items");
  return printable(v.dump(-1, ' ', false, json::error_handler_t::replace), 80);
}

void write_json_atomic(const fs::path& path, const json& j, int indent) {
  write_file_atomic(path, j.dump(indent) + "\n");
}

}  // namespace onebit
