#pragma once
// Listing a dataset repo with the Hub's tree API:
//   GET {endpoint}/api/datasets/{repo}/tree/{revision}/{path}?recursive=true
// answered in pages (a JSON array each) linked by `Link: <next-url>; rel="next"`. Entries are
// {"type": "file"|"directory", "path", "size", "oid" (git blob id), "lfs": {"oid" (sha256),
// "size", "pointerSize"}}; only files are returned here.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "onebit/hub/client.h"

namespace onebit::hub {

struct RepoFile {
  std::string path;     // relative to the repo root, checked by check_repo_path
  uint64_t size = 0;    // bytes of the real content (the LFS object for LFS files)
  std::string sha256;   // lower-case hex, LFS files only
  std::string git_oid;  // the git blob id (for an LFS file: of its pointer file)
  bool is_lfs() const { return !sha256.empty(); }
};

// "namespace/name" with the characters the Hub allows; the error names --dataset-id.
void check_dataset_id(const std::string& repo);

// A path from the tree API becomes a local path under an output directory: it must be relative,
// without "." or ".." components, empty components, backslashes or control characters.
void check_repo_path(const std::string& path, const std::string& where);

std::string dataset_tree_url(const std::string& endpoint, const std::string& repo, const std::string& revision,
                             const std::string& path_in_repo);
std::string dataset_resolve_url(const std::string& endpoint, const std::string& repo, const std::string& revision,
                                const std::string& path);

// The rel="next" target of a Link header, if any.
std::optional<std::string> parse_next_link(const std::string& link_header);

// The commit a branch or tag points at now (GET /api/datasets/{repo}/revision/{revision}, field
// "sha"): listing and downloading at that commit keeps a run of weeks on one version of the data
// even while the branch moves.
std::string resolve_dataset_commit(HubClient& client, const std::string& repo, const std::string& revision);

// Every file under `path_in_repo` ("" = the whole repo) at `revision`, in the order the Hub lists them.
std::vector<RepoFile> list_dataset_files(HubClient& client, const std::string& repo, const std::string& revision,
                                         const std::string& path_in_repo = "");

}  // namespace onebit::hub
