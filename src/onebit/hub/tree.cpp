#include "onebit/hub/tree.h"

#include <nlohmann/json.hpp>
#include <set>

#include "onebit/core/error.h"
#include "onebit/hub/url.h"

namespace onebit::hub {

namespace {

bool is_hex(const std::string& s, size_t len) {
  if (s.size() != len) return false;
  for (unsigned char c : s)
    if (!std::isxdigit(c)) return false;
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

uint64_t get_size(const nlohmann::json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_unsigned())
    fail(where, ": \"", key, "\" is missing or not a non-negative integer");
  return it->get<uint64_t>();
}

std::string get_string(const nlohmann::json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) fail(where, ": \"", key, "\" is missing or not a string");
  return it->get<std::string>();
}

RepoFile parse_file_entry(const nlohmann::json& e, const std::string& where) {
  RepoFile f;
  f.path = get_string(e, "path", where);
  const std::string at = cat(where, " entry \"", printable(f.path), "\"");
  check_repo_path(f.path, at);
  f.size = get_size(e, "size", at);
  if (auto oid = e.find("oid"); oid != e.end() && oid->is_string()) f.git_oid = lower(oid->get<std::string>());
  if (auto lfs = e.find("lfs"); lfs != e.end() && !lfs->is_null()) {
    if (!lfs->is_object()) fail(at, ": \"lfs\" is not an object");
    f.sha256 = lower(get_string(*lfs, "oid", at + " lfs"));
    if (!is_hex(f.sha256, 64)) fail(at, ": lfs.oid is not a sha256 (64 hex digits)");
    f.size = get_size(*lfs, "size", at + " lfs");
  } else if (!is_hex(f.git_oid, 40)) {
    // Without a sha256 the git blob id is the only content check there is: insist on it.
    fail(at, ": neither lfs.oid nor a 40-digit git oid to check the download against");
  }
  return f;
}

}  // namespace

void check_dataset_id(const std::string& repo) {
  const size_t slash = repo.find('/');
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < repo.size() &&
            repo.find('/', slash + 1) == std::string::npos && repo.size() <= 200;
  for (unsigned char c : repo)
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/')) ok = false;
  if (repo.find("..") != std::string::npos) ok = false;
  if (!ok) fail("--dataset-id \"", printable(repo), "\": expected namespace/name (letters, digits, '-', '_', '.')");
}

void check_repo_path(const std::string& path, const std::string& where) {
  bool ok = !path.empty() && path.front() != '/' && path.size() <= 4096;
  for (unsigned char c : path)
    if (c < 0x20 || c == 0x7F || c == '\\') ok = false;
  size_t start = 0;
  while (ok && start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") ok = false;
    start = end + 1;
  }
  if (!ok) fail(where, ": unsafe path \"", printable(path), "\" (must be relative, without empty, '.' or '..' parts)");
}

std::string dataset_tree_url(const std::string& endpoint, const std::string& repo, const std::string& revision,
                             const std::string& path_in_repo) {
  const std::string path = path_in_repo.empty() ? "" : cat("/", url_escape(path_in_repo, true));
  return cat(endpoint, "/api/datasets/", url_escape(repo, true), "/tree/", url_escape(revision, false), path,
             "?recursive=true&expand=false");
}

std::string dataset_resolve_url(const std::string& endpoint, const std::string& repo, const std::string& revision,
                                const std::string& path) {
  return cat(endpoint, "/datasets/", url_escape(repo, true), "/resolve/", url_escape(revision, false), "/",
             url_escape(path, true));
}

std::optional<std::string> parse_next_link(const std::string& header) {
  // Link: <url>; rel="next", <url2>; rel="prev"  (RFC 8288; the Hub sends one link)
  size_t pos = 0;
  while ((pos = header.find('<', pos)) != std::string::npos) {
    const size_t close = header.find('>', pos);
    if (close == std::string::npos) return std::nullopt;
    const std::string target = header.substr(pos + 1, close - pos - 1);
    const size_t next_link = header.find('<', close);
    const std::string params =
        lower(header.substr(close + 1, next_link == std::string::npos ? std::string::npos : next_link - close - 1));
    if (params.find("rel=\"next\"") != std::string::npos || params.find("rel=next") != std::string::npos) return target;
    pos = close + 1;
  }
  return std::nullopt;
}

std::string resolve_dataset_commit(HubClient& client, const std::string& repo, const std::string& revision) {
  check_dataset_id(repo);
  if (revision.empty()) fail("--revision must not be empty");
  const std::string what = cat("dataset ", repo, " at revision \"", printable(revision), "\"");
  const HttpResult r = client.get(
      cat(client.endpoint(), "/api/datasets/", url_escape(repo, true), "/revision/", url_escape(revision, false)),
      what);
  nlohmann::json info;
  try {
    info = nlohmann::json::parse(r.body);
  } catch (const nlohmann::json::exception&) {
    fail(what, ": the revision answer is not JSON");
  }
  if (!info.is_object()) fail(what, ": the revision answer is not a JSON object");
  const std::string sha = lower(get_string(info, "sha", what));
  if (!is_hex(sha, 40)) fail(what, ": \"sha\" is not a 40-digit commit id");
  return sha;
}

std::vector<RepoFile> list_dataset_files(HubClient& client, const std::string& repo, const std::string& revision,
                                         const std::string& path_in_repo) {
  check_dataset_id(repo);
  if (revision.empty()) fail("--revision must not be empty");
  std::vector<RepoFile> files;
  std::set<std::string> seen_paths, seen_pages;
  std::string url = dataset_tree_url(client.endpoint(), repo, revision, path_in_repo);
  const std::string what = cat("dataset ", repo, " at revision \"", printable(revision), "\": tree listing");
  for (int page = 1;; ++page) {
    if (!seen_pages.insert(url).second)
      client.fail_redacted(cat(what, ": page ", page, " links back to an earlier page"));
    const HttpResult r = client.get(url, what);
    const std::string where = cat(what, " page ", page);
    nlohmann::json arr;
    try {
      arr = nlohmann::json::parse(r.body);
    } catch (const nlohmann::json::exception&) {
      fail(where, ": the answer is not JSON");
    }
    if (!arr.is_array()) fail(where, ": expected a JSON array of entries");
    for (const auto& e : arr) {
      if (!e.is_object()) fail(where, ": an entry is not an object");
      const std::string type = get_string(e, "type", where);
      if (type == "directory") continue;
      if (type != "file") fail(where, ": unknown entry type \"", printable(type), "\"");
      RepoFile f = parse_file_entry(e, where);
      if (!seen_paths.insert(f.path).second) fail(where, ": \"", printable(f.path), "\" is listed twice");
      files.push_back(std::move(f));
    }
    const auto link = r.header("link");
    const auto next = link ? parse_next_link(*link) : std::nullopt;
    if (!next) break;
    url = resolve_url(url, *next);
  }
  return files;
}

}  // namespace onebit::hub
