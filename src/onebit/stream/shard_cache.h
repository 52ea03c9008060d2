#pragma once
// Disk-budget accounting for the local root of a streamed dataset. A shard's files are
// <root>/<path> and <root>/<path>.<suffix> (the download's .incomplete, converted outputs); a shard
// is reserved before its download starts, marked finished once the trainer has consumed it, and
// evicted (its files deleted) least-recently-finished first when a new reservation needs the room.
//
// Usage is measured from the directory, not only counted, so files a crashed run left behind (a
// half download, a shard nobody tracks any more) count against the budget too:
//   usage = bytes of every file under root + for each reserved shard, the part of its reservation
//           not yet on disk (max(0, reserved - its files' bytes)).
// Both terms come from one walk of root, each file counted once (by inode), so a download in flight
// counts as its whole reservation however far it got while the walk ran.
// A finished shard that is wanted again (the next epoch) keeps its files when it is reserved again,
// so a dataset that fits the budget is downloaded once, not once per epoch.
//
// Data parallelism: the ranks on one host split --disk-budget-gb, each streaming into its own
// directory under the host's local root (HostShare). Every rank's usage then also counts, whole, the
// files under the host root that are in no rank's directory of this run (strays, another run's
// leftovers): with L ranks on the host, each within budget / L, the host's total stays within the
// budget whatever the strays are.
// Thread-safe: downloads run in the background while the trainer consumes.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "onebit/core/fs.h"

namespace onebit::stream {

struct HostShare {
  fs::path root;                       // the host's local root (--local-root); empty: no sharing
  std::vector<std::string> rank_dirs;  // every rank's directory name under it, this cache's included
};

class ShardCache {
 public:
  // `budget_bytes` is the whole allowance for root (--disk-budget-gb, or this rank's share of it);
  // root is created if missing. With `host`, root is one of host.rank_dirs under host.root.
  ShardCache(fs::path root, uint64_t budget_bytes, HostShare host = {});

  // Reserves `bytes` for shard `path` (repo-relative), evicting finished shards if needed. Returns
  // false when it does not fit yet (the caller waits for a shard to finish); an error when `bytes`
  // alone exceeds the budget, since waiting could never help. Reserving a shard that is already
  // reserved is an error (a bookkeeping bug in the caller).
  bool try_reserve(const std::string& path, uint64_t bytes);
  // try_reserve, retried whenever a shard is finished or released, for at most `timeout`: the
  // download-ahead thread blocks here until the trainer has consumed enough. False on timeout.
  bool reserve_wait(const std::string& path, uint64_t bytes, std::chrono::milliseconds timeout);
  // The shard has been consumed: its files may go whenever the room is needed.
  void finish(const std::string& path);
  // Files of a shard already on disk that no reservation covers (a resumed stream's shards done
  // this epoch, kept for the next): finished, i.e. evictable, and reused if reserved again.
  void adopt_finished(const std::string& path);
  // Deletes the shard's files now and forgets it (reserved or finished).
  void release(const std::string& path);

  uint64_t budget() const { return budget_; }
  // Every regular file under root, recursively, plus the host root's files outside the rank dirs.
  uint64_t bytes_on_disk() const;
  // bytes_on_disk() plus reservations not yet on disk: what try_reserve compares with the budget.
  uint64_t usage() const;
  const fs::path& root() const { return root_; }

 private:
  bool try_reserve_locked(const std::string& path, uint64_t bytes);
  uint64_t usage_locked() const;
  uint64_t shard_bytes(const std::string& path) const;
  void delete_shard_files(const std::string& path) const;

  fs::path root_;
  uint64_t budget_;
  HostShare host_;
  mutable std::mutex mu_;
  std::condition_variable room_;  // notified when a shard is finished or released
  std::map<std::string, uint64_t> reserved_;  // path -> bytes, shards being downloaded or consumed
  std::deque<std::string> finished_;          // consumed shards still on disk, oldest finish first
};

}  // namespace onebit::stream
