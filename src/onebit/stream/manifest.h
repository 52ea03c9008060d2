#pragma once
// The manifest of a streamed dataset: one line per parquet shard (language, path, size, sha256,
// rows when known), built from the Hub's tree listing alone so a run of weeks can be planned
// without downloading anything, and saved as JSONL so a resumed run reuses the exact same list.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/hub/tree.h"

namespace onebit::stream {

struct Shard {
  std::string language;         // the <lang> of data/<lang>/train-XXXXX-of-YYYYY.parquet
  std::string path;             // relative to the repo root (and to the local root)
  uint64_t size = 0;            // bytes, as the tree API reports them
  std::string sha256;           // lower-case hex, or "" when the Hub gave none (a non-LFS file)
  std::optional<uint64_t> rows; // known only once the footer has been read
};

struct Manifest {
  std::vector<Shard> shards;  // sorted by path, so the order does not depend on the listing's pages
  // .parquet files whose path is not data/<lang>/train-N-of-M.parquet; reported, not fatal, because
  // a dataset may carry extra parquet files (e.g. metadata) next to its shards.
  size_t skipped = 0;
};

// The language of a shard path, or nullopt when the path is not data/<lang>/train-N-of-M.parquet
// (N and M decimal, N < M).
std::optional<std::string> shard_language(const std::string& path);

// Shards from a tree listing: files that are not .parquet (README.md, .gitattributes) are ignored,
// .parquet files of another shape are counted in `skipped`.
Manifest manifest_from_listing(const std::vector<hub::RepoFile>& files);

// One JSON object per line; `rows` is present only when known.
std::string manifest_to_jsonl(const Manifest& m);
void write_manifest(const fs::path& path, const Manifest& m);

// Reads a manifest written by write_manifest (or edited by hand): every error names file:line and the
// field; paths are checked like the tree API's (relative, no ".."), sha256 must be 64 hex digits or
// absent/empty, and a path may appear only once. Blank lines are ignored.
Manifest parse_manifest(const std::string& text, const std::string& where);
Manifest read_manifest(const fs::path& path);

}  // namespace onebit::stream
