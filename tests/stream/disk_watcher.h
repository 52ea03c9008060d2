#pragma once
// DiskWatcher: a thread that sums the bytes of the regular files under a directory every `period`
// while it lives; peak() is the largest total seen (the stream tests hold it to the disk budget).
// Each file counts once, by inode: a download renamed from its .incomplete name while the walk
// lists the directory may be met under both names, but it is one file on disk.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

namespace onebit::stream::testing {

class DiskWatcher {
 public:
  explicit DiskWatcher(std::filesystem::path root, std::chrono::milliseconds period = std::chrono::milliseconds(2))
      : root_(std::move(root)), period_(period), thread_([this] { loop(); }) {}
  ~DiskWatcher() {
    stop_ = true;
    thread_.join();
  }
  uint64_t peak() const { return peak_; }
  uint64_t samples() const { return samples_; }

 private:
  void loop() {
    namespace fs = std::filesystem;
    while (!stop_) {
      uint64_t total = 0;
      std::set<std::pair<dev_t, ino_t>> seen;
      std::error_code ec;
      for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        struct stat st;
        if (::stat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && seen.insert({st.st_dev, st.st_ino}).second)
          total += static_cast<uint64_t>(st.st_size);
      }
      peak_ = std::max<uint64_t>(peak_, total);
      ++samples_;
      std::this_thread::sleep_for(period_);
    }
  }
  std::filesystem::path root_;
  std::chrono::milliseconds period_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> peak_{0}, samples_{0};
  std::thread thread_;  // last: starts after the members it reads
};

}  // namespace onebit::stream::testing
