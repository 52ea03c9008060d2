// The shard cache on a temp dir with small fake files: the budget is never exceeded while shards are
// "downloaded" and consumed, a shard larger than the budget is an error, eviction goes
// least-recently-finished first (and takes .incomplete and converted siblings), leftovers count, a
// finished shard reserved again keeps its files, and ranks sharing a host count the host's strays.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "onebit/core/error.h"
#include "onebit/stream/shard_cache.h"

namespace onebit::stream {
namespace {

fs::path temp_root(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("onebit_shard_cache_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

void write_bytes(const fs::path& p, size_t n) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << std::string(n, 'x');
}

TEST(ShardCache, TooLargeShardIsAnError) {
  const fs::path root = temp_root("large");
  ShardCache cache(root, 1000);
  try {
    cache.try_reserve("data/c/train-00000-of-00001.parquet", 1001);
    FAIL() << "a shard larger than the budget was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("data/c/train-00000-of-00001.parquet"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--disk-budget-gb"), std::string::npos) << msg;
  }
  EXPECT_TRUE(cache.try_reserve("data/c/train-00000-of-00001.parquet", 1000));  // exactly the budget fits
  EXPECT_THROW(ShardCache(root, 0), Error);
  fs::remove_all(root);
}

TEST(ShardCache, AFinishedShardReservedAgainKeepsItsFiles) {
  const fs::path root = temp_root("again");
  ShardCache cache(root, 1000);
  const std::string a = "data/c/train-00000-of-00002.parquet", b = "data/c/train-00001-of-00002.parquet";
  ASSERT_TRUE(cache.try_reserve(a, 400));
  write_bytes(root / a, 400);
  cache.finish(a);
  ASSERT_TRUE(cache.try_reserve(b, 500));
  write_bytes(root / b, 500);
  cache.finish(b);
  // The next epoch wants a again: its file stays, and nothing needs evicting (400 already counted).
  ASSERT_TRUE(cache.try_reserve(a, 400));
  EXPECT_TRUE(fs::exists(root / a));
  EXPECT_TRUE(fs::exists(root / b));
  EXPECT_EQ(cache.usage(), 900u);
  // a is reserved now, so a shard needing room evicts b, never a.
  ASSERT_TRUE(cache.try_reserve("data/c/other-00000-of-00001.parquet", 600));
  EXPECT_TRUE(fs::exists(root / a));
  EXPECT_FALSE(fs::exists(root / b));
  // A shard adopted as finished (a resumed run's file) is evictable and reusable the same way.
  cache.release(a);
  write_bytes(root / b, 300);
  cache.adopt_finished(b);
  ASSERT_TRUE(cache.try_reserve(b, 300));
  EXPECT_TRUE(fs::exists(root / b));
  fs::remove_all(root);
}

TEST(ShardCache, RanksOnOneHostCountTheHostsStraysWhole) {
  const fs::path host = temp_root("host");
  const std::vector<std::string> dirs = {"rank-0-of-2", "rank-1-of-2"};
  write_bytes(host / "stray.bin", 100);                     // counted by every rank
  write_bytes(host / "rank-0-of-3" / "old.parquet", 50);    // another world's leftover: a stray too
  write_bytes(host / "rank-1-of-2" / "theirs.parquet", 70); // the other rank's: not this one's
  ShardCache mine(host / "rank-0-of-2", 500, HostShare{host, dirs});
  ShardCache theirs(host / "rank-1-of-2", 500, HostShare{host, dirs});
  EXPECT_EQ(mine.bytes_on_disk(), 150u);
  EXPECT_EQ(theirs.bytes_on_disk(), 220u);
  // Each within its share of a 1000-byte host budget: the host never holds more than 1000.
  EXPECT_FALSE(mine.try_reserve("data/c/a.parquet", 351));
  EXPECT_TRUE(mine.try_reserve("data/c/a.parquet", 350));
  EXPECT_TRUE(theirs.try_reserve("data/c/b.parquet", 280));
  EXPECT_FALSE(theirs.try_reserve("data/c/c.parquet", 1));
  write_bytes(host / "rank-0-of-2" / "data/c/a.parquet", 350);
  write_bytes(host / "rank-1-of-2" / "data/c/b.parquet", 280);
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(host))
    if (e.is_regular_file()) total += e.file_size();
  EXPECT_EQ(total, 850u);
  EXPECT_EQ(mine.usage(), 500u);
  EXPECT_EQ(theirs.usage(), 500u);
  fs::remove_all(host);
}

TEST(ShardCache, LeftoversCountAgainstTheBudget) {
  const fs::path root = temp_root("leftovers");
  write_bytes(root / "data/c/train-00003-of-00009.parquet.incomplete", 600);  // a crashed run's download
  write_bytes(root / "stray.tmp", 100);
  ShardCache cache(root, 1000);
  EXPECT_EQ(cache.bytes_on_disk(), 700u);
  EXPECT_EQ(cache.usage(), 700u);
  EXPECT_FALSE(cache.try_reserve("data/c/train-00000-of-00009.parquet", 400));
  EXPECT_TRUE(cache.try_reserve("data/c/train-00000-of-00009.parquet", 300));
  EXPECT_EQ(cache.usage(), 1000u);  // reserved but not yet on disk still counts
  // The crashed shard, reserved again, is measured by what it already has on disk.
  cache.release("data/c/train-00000-of-00009.parquet");
  EXPECT_TRUE(cache.try_reserve("data/c/train-00003-of-00009.parquet", 800));
  EXPECT_EQ(cache.usage(), 100u + 800u);
  fs::remove_all(root);
}

TEST(ShardCache, EvictsLeastRecentlyFinishedFirstWithItsSiblings) {
  const fs::path root = temp_root("evict");
  ShardCache cache(root, 1000);
  const std::string a = "data/c/train-00000-of-00003.parquet", b = "data/c/train-00001-of-00003.parquet",
                    c = "data/c/train-00002-of-00003.parquet", d = "data/python/train-00000-of-00001.parquet";
  for (const auto& s : {a, b, c}) {
    ASSERT_TRUE(cache.try_reserve(s, 300));
    write_bytes(root / s, 250);
    write_bytes(root / (s + ".tokens"), 50);
  }
  write_bytes(root / "data/c/train-00000-of-00003.parquet2", 10);  // a different file, not a sibling of a
  cache.finish(b);  // b finishes before a: b is the one to go first
  cache.finish(a);
  EXPECT_FALSE(cache.try_reserve(d, 700));  // even evicting a and b leaves 300 + 10 + 700 > 1000
  EXPECT_TRUE(fs::exists(root / b)) << "a failed reservation still evicted";
  ASSERT_TRUE(cache.try_reserve(d, 300));   // needs one eviction: b, the least recently finished
  EXPECT_FALSE(fs::exists(root / b));
  EXPECT_FALSE(fs::exists(root / (b + ".tokens")));
  EXPECT_TRUE(fs::exists(root / a));
  EXPECT_TRUE(fs::exists(root / "data/c/train-00000-of-00003.parquet2"));
  EXPECT_LE(cache.usage(), 1000u);
  cache.release(c);  // the consumer gave up on c: its files go at once
  EXPECT_FALSE(fs::exists(root / c));
  EXPECT_FALSE(fs::exists(root / (c + ".tokens")));
  EXPECT_THROW(cache.finish(c), Error);
  EXPECT_THROW(cache.try_reserve(d, 1), Error);  // reserved twice
  fs::remove_all(root);
}

TEST(ShardCache, ReserveWaitBlocksUntilAShardIsFinished) {
  const fs::path root = temp_root("wait");
  ShardCache cache(root, 1000);
  const std::string a = "data/c/train-00000-of-00002.parquet", b = "data/c/train-00001-of-00002.parquet";
  ASSERT_TRUE(cache.try_reserve(a, 800));
  write_bytes(root / a, 800);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(cache.reserve_wait(b, 800, std::chrono::milliseconds(50)));  // nobody finishes a: timeout
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50));
  std::thread consumer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cache.finish(a);
  });
  EXPECT_TRUE(cache.reserve_wait(b, 800, std::chrono::seconds(30)));  // woken by finish, evicts a
  consumer.join();
  EXPECT_FALSE(fs::exists(root / a));
  EXPECT_THROW(cache.reserve_wait("big", 1001, std::chrono::seconds(30)), Error);  // never waits for the impossible
  fs::remove_all(root);
}

// A download in flight (a thread writing a reserved shard's .incomplete file in small chunks and
// renaming it, over and over) while another shard asks for exactly one byte more than the rest of
// the budget: it must never fit, and the usage never drops below the reservation, however the
// cache's directory walk and the writes interleave. (Usage measured by two walks, one for all the
// files and a later one for the reserved shard's, missed what the download wrote in between and
// let that shard in.)
TEST(ShardCache, AShardDownloadingWhileOthersReserveCountsWhole) {
  const fs::path root = temp_root("inflight");
  const uint64_t budget = 100000, a_size = 60000;
  ShardCache cache(root, budget);
  const std::string a = "data/c/train-00000-of-00002.parquet", b = "data/c/train-00001-of-00002.parquet";
  ASSERT_TRUE(cache.try_reserve(a, a_size));
  fs::create_directories((root / a).parent_path());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> rounds{0};
  std::thread download([&] {
    const fs::path partial = root / (a + ".incomplete"), done = root / a;
    const std::string chunk(500, 'x');
    while (!stop) {
      const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) return;
      for (uint64_t n = 0; n < a_size && !stop; n += chunk.size())
        if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) break;
      ::close(fd);
      fs::rename(partial, done);
      fs::remove(done);
      ++rounds;
    }
  });
  int admitted = 0, low = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  for (int tries = 0; std::chrono::steady_clock::now() < until || tries < 200; ++tries) {
    if (cache.try_reserve(b, budget - a_size + 1)) {
      ++admitted;
      cache.release(b);
    }
    low += cache.usage() < a_size;
  }
  stop = true;
  download.join();
  EXPECT_GT(rounds.load(), 0u);
  EXPECT_EQ(admitted, 0) << "a shard was reserved into room the download in flight was promised";
  EXPECT_EQ(low, 0) << "the usage fell below the reservation of the shard downloading";
  fs::remove_all(root);
}

// A simulated stream: shards of random sizes are reserved, downloaded in random-size chunks (to
// .incomplete, then renamed), converted, consumed and finished, always two or three at a time; after
// every step the bytes on disk stay within the budget and every shard is eventually served.
TEST(ShardCache, BudgetIsNeverExceeded) {
  std::mt19937_64 gen(std::random_device{}());
  const uint64_t budget = 5000;
  const fs::path root = temp_root("sim");
  ShardCache cache(root, budget);
  struct Live {
    std::string path;
    uint64_t size, written = 0;
  };
  std::vector<Live> live;
  int next_shard = 0, done = 0;
  const int total = 60;
  uint64_t peak = 0;
  for (int step = 0; done < total; ++step) {
    ASSERT_LT(step, 100000);
    if (next_shard < total && live.size() < 3) {
      const uint64_t size = 200 + gen() % 1800;  // the reservation covers parquet + converted output
      const std::string path = "data/l" + std::to_string(next_shard % 3) + "/train-" + std::to_string(next_shard) +
                               "-of-" + std::to_string(total) + ".parquet";
      if (cache.try_reserve(path, size)) {
        live.push_back({path, size});
        ++next_shard;
      } else {
        ASSERT_FALSE(live.empty()) << "nothing in flight, yet a shard within the budget did not fit";
      }
    }
    if (!live.empty()) {
      Live& s = live[gen() % live.size()];
      const uint64_t parquet = s.size * 3 / 4;
      if (s.written < parquet) {
        s.written = std::min(parquet, s.written + 1 + gen() % 400);
        write_bytes(root / (s.path + ".incomplete"), s.written);
      } else if (s.written == parquet) {
        fs::rename(root / (s.path + ".incomplete"), root / s.path);
        write_bytes(root / (s.path + ".tokens"), s.size - parquet);
        s.written = s.size;
      } else {
        cache.finish(s.path);
        ++done;
        std::erase_if(live, [&](const Live& l) { return l.path == s.path; });
      }
    }
    const uint64_t disk = cache.bytes_on_disk();
    peak = std::max(peak, disk);
    ASSERT_LE(disk, budget) << "step " << step;
    ASSERT_LE(cache.usage(), budget) << "step " << step;
  }
  EXPECT_GT(peak, budget / 2);  // the test did fill the disk
  fs::remove_all(root);
}

}  // namespace
}  // namespace onebit::stream
