#pragma once
// Downloads the shards of an epoch ahead of the trainer, within the disk budget. One scheduler
// thread reserves room for the shards strictly in stream order (ShardCache::reserve_wait: it blocks
// while the budget is full, until the reader has finished a shard), then hands each reserved shard
// to one of `parallel` download threads (hub::download_file: resumable, verified, retried). In-order
// reservation is what rules out a deadlock: the shard the reader needs next is always reserved
// before any shard after it.
//
// A shard whose download fails for good (retries exhausted, wrong sha256) is reported to the
// reader as failed, which skips it; only a budget that can never hold the next shard (files that
// are not this stream's fill the local root, or one shard is larger than the budget) stops the run.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "onebit/hub/client.h"
#include "onebit/stream/manifest.h"
#include "onebit/stream/shard_cache.h"

namespace onebit::stream {

struct DownloaderOptions {
  hub::HubOptions hub;
  std::string repo;      // dataset id
  std::string revision;  // a commit, so weeks of downloads see one version of the data
  int parallel = 2;      // shards downloading at once
};

class ShardDownloader {
 public:
  ShardDownloader(DownloaderOptions options, const Manifest& manifest, ShardCache& cache);
  ~ShardDownloader();  // cancels transfers in flight and joins the threads
  ShardDownloader(const ShardDownloader&) = delete;
  ShardDownloader& operator=(const ShardDownloader&) = delete;

  // Downloads order[from..] (indices into the manifest) in that order. Replaces the previous plan,
  // whose shards must all have been waited for (the reader calls it at the start of each epoch).
  void plan(std::vector<size_t> order, size_t from);
  // Blocks until order[pos] is on disk (true) or has failed for good (false; `why` says why).
  // Throws when the stream cannot go on at all (see above).
  bool wait(size_t pos, std::string& why);

  // Bytes that landed on disk so far (a shard found already complete counts whole).
  uint64_t bytes_downloaded() const { return bytes_.load(); }
  uint64_t shards_downloaded() const { return shards_.load(); }

 private:
  struct Slot {
    bool done = false, ok = false;
    std::string error;
  };
  void stop_threads();
  void schedule_loop(size_t from);
  void download_loop();

  DownloaderOptions opt_;
  const Manifest& manifest_;
  ShardCache& cache_;

  std::mutex mu_;
  std::condition_variable cv_;  // any change below
  std::vector<size_t> order_;
  std::map<size_t, Slot> slots_;  // by position in order_, from the plan's start
  std::deque<size_t> queue_;      // reserved positions waiting for a download thread
  size_t waiting_on_ = SIZE_MAX;  // the position the reader is blocked on
  std::string fatal_;
  bool stop_ = false;
  std::atomic<bool> cancel_{false};
  std::atomic<uint64_t> bytes_{0}, shards_{0};
  std::vector<std::thread> threads_;
};

}  // namespace onebit::stream
