#include "onebit/stream/manifest.h"

#include <algorithm>
#include <set>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"

namespace onebit::stream {
namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::optional<std::string> shard_language(const std::string& path) {
  static const std::string kPrefix = "data/", kStem = "train-", kOf = "-of-", kExt = ".parquet";
  if (path.rfind(kPrefix, 0) != 0 || !ends_with(path, kExt)) return std::nullopt;
  const std::string rest = path.substr(kPrefix.size(), path.size() - kPrefix.size() - kExt.size());
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || slash == 0) return std::nullopt;
  const std::string lang = rest.substr(0, slash), file = rest.substr(slash + 1);
  if (file.rfind(kStem, 0) != 0) return std::nullopt;
  const std::string nums = file.substr(kStem.size());
  const size_t of = nums.find(kOf);
  if (of == std::string::npos) return std::nullopt;
  const std::string index = nums.substr(0, of), count = nums.substr(of + kOf.size());
  // Length caps keep stoull in range; real shard numbers have five digits.
  if (!all_digits(index) || !all_digits(count) || index.size() > 12 || count.size() > 12) return std::nullopt;
  if (std::stoull(index) >= std::stoull(count)) return std::nullopt;
  return lang;
}

Manifest manifest_from_listing(const std::vector<hub::RepoFile>& files) {
  Manifest m;
  for (const auto& f : files) {
    if (!ends_with(f.path, ".parquet")) continue;
    auto lang = shard_language(f.path);
    if (!lang) {
      ++m.skipped;
      continue;
    }
    m.shards.push_back(Shard{*lang, f.path, f.size, f.sha256, std::nullopt});
  }
  std::sort(m.shards.begin(), m.shards.end(), [](const Shard& a, const Shard& b) { return a.path < b.path; });
  return m;
}

std::string manifest_to_jsonl(const Manifest& m) {
  std::string out;
  for (const auto& s : m.shards) {
    json j = {{"language", s.language}, {"path", s.path}, {"size", s.size}, {"sha256", s.sha256}};
    if (s.rows) j["rows"] = *s.rows;
    out += j.dump();
    out += '\n';
  }
  return out;
}

void write_manifest(const fs::path& path, const Manifest& m) { write_file_atomic(path, manifest_to_jsonl(m)); }

Manifest parse_manifest(const std::string& text, const std::string& where) {
  Manifest m;
  std::set<std::string> seen;
  size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string at = cat(where, ":", line_no);
    const json j = parse_json_text(line, at);
    Shard s;
    s.language = json_get<std::string>(j, "language", at);
    if (s.language.empty() || s.language.find('/') != std::string::npos)
      fail(at, ": key \"language\" must be a non-empty name without '/' (got \"", printable(s.language), "\")");
    s.path = json_get<std::string>(j, "path", at);
    hub::check_repo_path(s.path, at + ": key \"path\"");
    s.size = json_get<uint64_t>(j, "size", at);
    s.sha256 = json_get_or<std::string>(j, "sha256", "", at);
    if (!s.sha256.empty() && !is_sha256_hex(s.sha256))
      fail(at, ": key \"sha256\" must be 64 lower-case hex digits (got \"", printable(s.sha256), "\")");
    if (j.contains("rows") && !j["rows"].is_null()) s.rows = json_get<uint64_t>(j, "rows", at);
    if (!seen.insert(s.path).second) fail(at, ": key \"path\": \"", printable(s.path), "\" is listed twice");
    m.shards.push_back(std::move(s));
  }
  return m;
}

Manifest read_manifest(const fs::path& path) { return parse_manifest(read_file(path), path.string()); }

}  // namespace onebit::stream
