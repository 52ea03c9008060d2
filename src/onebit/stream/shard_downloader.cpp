#include "onebit/stream/shard_downloader.h"

#include <chrono>

#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/hub/download.h"

namespace onebit::stream {

ShardDownloader::ShardDownloader(DownloaderOptions options, const Manifest& manifest, ShardCache& cache)
    : opt_(std::move(options)), manifest_(manifest), cache_(cache) {
  if (opt_.parallel < 1) fail("--download-parallel must be at least 1");
}

ShardDownloader::~ShardDownloader() { stop_threads(); }

void ShardDownloader::stop_threads() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cancel_ = true;
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void ShardDownloader::plan(std::vector<size_t> order, size_t from) {
  stop_threads();
  {
    std::lock_guard lock(mu_);
    order_ = std::move(order);
    slots_.clear();
    queue_.clear();
    fatal_.clear();
    waiting_on_ = SIZE_MAX;
    stop_ = false;
  }
  cancel_ = false;
  threads_.emplace_back([this, from] { schedule_loop(from); });
  for (int i = 0; i < opt_.parallel; ++i) threads_.emplace_back([this] { download_loop(); });
}

void ShardDownloader::schedule_loop(size_t from) {
  try {
    for (size_t pos = from; pos < order_.size(); ++pos) {
      const Shard& s = manifest_.shards[order_[pos]];
      // reserve_wait wakes whenever the reader finishes a shard; the timeout only lets it see stop_.
      while (!cache_.reserve_wait(s.path, s.size, std::chrono::milliseconds(200))) {
        bool reader_blocked;
        {
          std::lock_guard lock(mu_);
          if (stop_) return;
          reader_blocked = waiting_on_ == pos;
        }
        // The reader waits for this very shard, so every earlier one is finished (evictable) and
        // nothing later is reserved: if it still does not fit, files that are not this stream's
        // hold the room, and waiting would never end.
        if (reader_blocked && !cache_.try_reserve(s.path, s.size))
          fail("--disk-budget-gb: shard \"", printable(s.path), "\" (", s.size,
               " bytes) does not fit: ", cache_.bytes_on_disk(), " bytes under ",
               printable(cache_.root().string(), 4096), " are held by files this stream is not using, of a budget of ",
               cache_.budget(), " bytes; free them or raise --disk-budget-gb");
        if (reader_blocked) break;
      }
      {
        std::lock_guard lock(mu_);
        if (stop_) return;  // the reservation is dropped with the cache's bookkeeping of this run
        queue_.push_back(pos);
      }
      cv_.notify_all();
    }
  } catch (const std::exception& e) {
    std::lock_guard lock(mu_);
    fatal_ = e.what();
    cv_.notify_all();
  }
}

void ShardDownloader::download_loop() {
  hub::HubClient client(opt_.hub, &cancel_);
  while (true) {
    size_t pos;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      pos = queue_.front();
      queue_.pop_front();
    }
    const Shard& s = manifest_.shards[order_[pos]];
    Slot slot;
    slot.done = true;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      hub::RepoFile f;
      f.path = s.path;
      f.size = s.size;
      f.sha256 = s.sha256;
      hub::download_file(client, opt_.repo, opt_.revision, f, cache_.root() / s.path,
                         [this](uint64_t n) { bytes_ += n; });
      slot.ok = true;
      ++shards_;
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      log_debug("stream: ", printable(s.path), " on disk (", s.size, " bytes, ", dt, " s)");
    } catch (const std::exception& e) {
      if (cancel_) return;  // shutting down: the transfer was cancelled, not failed
      slot.error = e.what();
      try {
        cache_.release(s.path);  // its room and its partial file go; the stream skips it
      } catch (const std::exception& re) {
        slot.error += cat("; ", re.what());
      }
    }
    {
      std::lock_guard lock(mu_);
      slots_[pos] = std::move(slot);
    }
    cv_.notify_all();
  }
}

bool ShardDownloader::wait(size_t pos, std::string& why) {
  std::unique_lock lock(mu_);
  OB_CHECK(pos < order_.size(), "shard downloader: position ", pos, " is past the plan's ", order_.size(), " shards");
  waiting_on_ = pos;
  cv_.notify_all();
  cv_.wait(lock, [&] { return slots_.count(pos) > 0 || !fatal_.empty(); });
  waiting_on_ = SIZE_MAX;
  if (!fatal_.empty()) throw Error(fatal_);
  const Slot slot = slots_[pos];
  slots_.erase(pos);
  why = slot.error;
  return slot.ok;
}

}  // namespace onebit::stream
