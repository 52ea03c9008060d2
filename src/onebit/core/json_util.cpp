#include "onebit/core/json_util.h"

namespace onebit {

json read_json_file(const fs::path& path) {
  std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    fail(path.string(), ": not valid JSON (byte ", e.byte, ")");
  } catch (const json::exception& e) {
    // e.g. a number too large for a double (1e999): nlohmann reports it as out_of_range.
    fail(path.string(), ": not valid JSON (", printable(e.what()), ")");
  }
}

void write_json_atomic(const fs::path& path, const json& j, int indent) {
  write_file_atomic(path, j.dump(indent) + "\n");
}

}  // namespace onebit
