#include "onebit/stream/shard_cache.h"

#include <algorithm>
#include <chrono>
#include <system_error>
#include <vector>

#include "onebit/core/error.h"

namespace onebit::stream {
namespace {

// The shard's own file and its suffixed siblings ("x.parquet", "x.parquet.incomplete",
// "x.parquet.tokens"), but not "x.parquet2".
bool belongs_to(const std::string& name, const std::string& base) {
  return name == base || (name.size() > base.size() && name.compare(0, base.size(), base) == 0 && name[base.size()] == '.');
}

}  // namespace

ShardCache::ShardCache(fs::path root, uint64_t budget_bytes) : root_(std::move(root)), budget_(budget_bytes) {
  if (budget_ == 0) fail("--disk-budget-gb: the disk budget must be positive");
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) fail(root_.string(), ": cannot create the local root: ", ec.message());
}

uint64_t ShardCache::bytes_on_disk() const {
  uint64_t total = 0;
  std::error_code ec;
  // A file may vanish between listing and stat (another thread evicting): skip it rather than fail.
  for (auto it = fs::recursive_directory_iterator(root_, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) {
      const uint64_t n = it->file_size(fec);
      if (!fec) total += n;
    }
  }
  if (ec) fail(root_.string(), ": cannot list the local root: ", ec.message());
  return total;
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

uint64_t ShardCache::usage_locked() const {
  uint64_t total = bytes_on_disk();
  for (const auto& [path, bytes] : reserved_) {
    const uint64_t have = shard_bytes(path);
    if (bytes > have) total += bytes - have;
  }
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
         " bytes); raise --disk-budget-gb");
  OB_CHECK(!reserved_.count(path), "shard cache: \"", printable(path), "\" is reserved twice");
  // A shard finished earlier and now wanted again (a new epoch) reuses nothing: it is reserved afresh.
  if (auto it = std::find(finished_.begin(), finished_.end(), path); it != finished_.end()) {
    delete_shard_files(path);
    finished_.erase(it);
  }
  uint64_t used = usage_locked();
  // What the shard already has on disk (a download a crashed run left half done) is in `used`
  // already: only the rest of the reservation is new.
  const uint64_t need = bytes - std::min(bytes, shard_bytes(path));
  if (used + need > budget_) {
    // Evict only when evicting would make it fit: otherwise a shard that must wait anyway would
    // throw away finished shards for nothing.
    uint64_t reclaimable = 0;
    for (const auto& f : finished_) reclaimable += shard_bytes(f);
    if (used - std::min(used, reclaimable) + need > budget_) return false;
  }
  while (used + need > budget_ && !finished_.empty()) {
    delete_shard_files(finished_.front());
    finished_.pop_front();
    used = usage_locked();
  }
  if (used + need > budget_) return false;
  reserved_[path] = bytes;
  return true;
}

void ShardCache::finish(const std::string& path) {
  std::lock_guard lock(mu_);
  OB_CHECK(reserved_.erase(path) == 1, "shard cache: \"", printable(path), "\" finished without a reservation");
  finished_.push_back(path);
  room_.notify_all();
}

void ShardCache::release(const std::string& path) {
  std::lock_guard lock(mu_);
  reserved_.erase(path);
  std::erase(finished_, path);
  delete_shard_files(path);
  room_.notify_all();
}

}  // namespace onebit::stream
