#include "onebit/core/json_util.h"

namespace onebit {

json read_json_file(const fs::path& path) {
  std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    fail(path.string(), ": not valid JSON (byte ", e.byte, ")");
  }
}

void write_json_atomic(const fs::path& path, const json& j, int indent) {
  write_file_atomic(path, j.dump(indent) + "\n");
}

}  // namespace onebit
