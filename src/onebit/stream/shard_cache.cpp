#include "onebit/stream/shard_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include "onebit/core/error.h"

namespace onebit::stream {
namespace {

// The shard's own file and its suffixed siblings ("x.parquet", "x.parquet.incomplete",
// "x.parquet.tokens"), but not "x.parquet2".
bool belongs_to(const std::string& name, const std::string& base) {
  return name == base || (name.size() > base.size() && name.compare(0, base.size(), base) == 0 && name[base.size()] == '.');
}

// Calls fn(path, bytes) for every regular file under `dir`, recursively, leaving out the top-level
// entries named in `skip`, each file once: a file the walk meets under two names (renamed from its
// .incomplete name while the directory is listed, or hard-linked) is one file on disk. A missing
// directory holds nothing.
template <class Fn>
void for_each_file(const fs::path& dir, const std::vector<std::string>& skip, Fn&& fn) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  std::set<std::pair<dev_t, ino_t>> seen;
  // A file may vanish between listing and stat (another thread evicting): skip it rather than fail.
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() == 0 && !skip.empty() &&
        std::find(skip.begin(), skip.end(), it->path().filename().string()) != skip.end()) {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    if (::stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (!seen.insert({st.st_dev, st.st_ino}).second) continue;
    fn(it->path(), static_cast<uint64_t>(st.st_size));
  }
  if (ec) fail(dir.string(), ": cannot list the local root: ", ec.message());
}

uint64_t bytes_under(const fs::path& dir, const std::vector<std::string>& skip = {}) {
  uint64_t total = 0;
  for_each_file(dir, skip, [&](const fs::path&, uint64_t n) { total += n; });
  return total;
}

}  // namespace

ShardCache::ShardCache(fs::path root, uint64_t budget_bytes, HostShare host)
    : root_(std::move(root)), budget_(budget_bytes), host_(std::move(host)) {
  if (budget_ == 0) fail("--disk-budget-gb: the disk budget must be positive");
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) fail(root_.string(), ": cannot create the local root: ", ec.message());
}

uint64_t ShardCache::bytes_on_disk() const {
  const uint64_t mine = bytes_under(root_);
  return host_.root.empty() ? mine : mine + bytes_under(host_.root, host_.rank_dirs);
}

uint64_t ShardCache::shard_bytes(const std::string& path) const {
  const fs::path full = root_ / path;
  const std::string base = full.filename().string();
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(full.parent_path(), ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::error_code fec;
    if (belongs_to(it->path().filename().string(), base) && it->is_regular_file(fec)) {
      const uint64_t n = it->file_size(fec);
      if (!fec) total += n;
    }
  }
  return total;  // a missing directory simply means nothing is on disk yet
}

void ShardCache::delete_shard_files(const std::string& path) const {
  const fs::path full = root_ / path;
  const std::string base = full.filename().string();
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (auto it = fs::directory_iterator(full.parent_path(), ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    if (belongs_to(it->path().filename().string(), base)) doomed.push_back(it->path());
  for (const auto& p : doomed) {
    std::error_code rec;
    fs::remove(p, rec);
    if (rec) fail(p.string(), ": cannot delete an evicted shard file: ", rec.message());
  }
}

// One walk of root, each file counted once: a file of a reserved shard counts as that shard's, and
// the shard as the larger of its reservation and its files; any other file counts as it is. Taking
// both from the same walk matters: a download in flight grows its shard's .incomplete file (and
// renames it) while the walk runs, and a second walk for the reserved shards would see more of it
// than the first did, dropping the difference from the usage (the room a concurrent reservation
// could then take twice). The reservation bounds what the download may write, so counting the
// reserved shard as its reservation is right whenever the walk looks.
uint64_t ShardCache::usage_locked() const {
  std::vector<std::pair<fs::path, std::string>> shards;  // per reserved shard: directory, file name
  std::vector<uint64_t> have(reserved_.size(), 0);
  for (const auto& [path, bytes] : reserved_) {
    const fs::path full = root_ / path;
    shards.emplace_back(full.parent_path(), full.filename().string());
  }
  uint64_t others = 0;
  for_each_file(root_, {}, [&](const fs::path& file, uint64_t n) {
    const fs::path dir = file.parent_path();
    const std::string name = file.filename().string();
    size_t owner = SIZE_MAX;  // the longest shard name the file belongs to ("x.parquet.y" over "x.parquet")
    for (size_t i = 0; i < shards.size(); ++i)
      if (belongs_to(name, shards[i].second) && dir == shards[i].first &&
          (owner == SIZE_MAX || shards[i].second.size() > shards[owner].second.size()))
        owner = i;
    (owner == SIZE_MAX ? others : have[owner]) += n;
  });
  if (!host_.root.empty()) others += bytes_under(host_.root, host_.rank_dirs);
  uint64_t total = others;
  size_t i = 0;
  for (const auto& [path, bytes] : reserved_) total += std::max(bytes, have[i++]);
  return total;
}

uint64_t ShardCache::usage() const {
  std::lock_guard lock(mu_);
  return usage_locked();
}

bool ShardCache::try_reserve(const std::string& path, uint64_t bytes) {
  std::lock_guard lock(mu_);
  return try_reserve_locked(path, bytes);
}

bool ShardCache::reserve_wait(const std::string& path, uint64_t bytes, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  while (!try_reserve_locked(path, bytes))
    if (room_.wait_until(lock, deadline) == std::cv_status::timeout) return try_reserve_locked(path, bytes);
  return true;
}

bool ShardCache::try_reserve_locked(const std::string& path, uint64_t bytes) {
  if (bytes > budget_)
    fail("shard \"", printable(path), "\" needs ", bytes, " bytes, more than the whole disk budget (", budget_,
         " bytes", host_.root.empty() ? std::string() : cat(": this rank's share of --disk-budget-gb, split among the ",
                                                            "ranks on this host"),
         "); raise --disk-budget-gb");
  OB_CHECK(!reserved_.count(path), "shard cache: \"", printable(path), "\" is reserved twice");
  // A shard finished earlier and now wanted again (a new epoch) keeps its files: it is taken out of
  // the evictable list once reserved, and what it has on disk counts towards its reservation (the
  // downloader then finds a complete file and checks it instead of downloading it again).
  const auto is_self = [&](const std::string& f) { return f == path; };
  uint64_t used = usage_locked();
  // What the shard already has on disk (a download a crashed run left half done, or the whole shard
  // from the last epoch) is in `used` already: only the rest of the reservation is new.
  const uint64_t need = bytes - std::min(bytes, shard_bytes(path));
  if (used + need > budget_) {
    // Evict only when evicting would make it fit: otherwise a shard that must wait anyway would
    // throw away finished shards for nothing.
    uint64_t reclaimable = 0;
    for (const auto& f : finished_)
      if (!is_self(f)) reclaimable += shard_bytes(f);
    if (used - std::min(used, reclaimable) + need > budget_) return false;
  }
  for (auto it = finished_.begin(); used + need > budget_ && it != finished_.end();) {
    if (is_self(*it)) {
      ++it;
      continue;
    }
    delete_shard_files(*it);
    it = finished_.erase(it);
    used = usage_locked();
  }
  if (used + need > budget_) return false;
  std::erase_if(finished_, is_self);
  reserved_[path] = bytes;
  return true;
}

void ShardCache::finish(const std::string& path) {
  std::lock_guard lock(mu_);
  OB_CHECK(reserved_.erase(path) == 1, "shard cache: \"", printable(path), "\" finished without a reservation");
  finished_.push_back(path);
  room_.notify_all();
}

void ShardCache::adopt_finished(const std::string& path) {
  std::lock_guard lock(mu_);
  OB_CHECK(!reserved_.count(path), "shard cache: \"", printable(path), "\" adopted while reserved");
  if (std::find(finished_.begin(), finished_.end(), path) == finished_.end()) finished_.push_back(path);
}

void ShardCache::release(const std::string& path) {
  std::lock_guard lock(mu_);
  reserved_.erase(path);
  std::erase(finished_, path);
  delete_shard_files(path);
  room_.notify_all();
}

}  // namespace onebit::stream
