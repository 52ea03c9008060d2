// Fuzz test for the Parquet reader: a seeded mutation loop over the fixture files, built with
// AddressSanitizer and UBSan on the fuzz harness's instrumented sources (tests/fuzz/CMakeLists.txt). Every mutated file must either decode
// or end in an onebit::Error; any out-of-bounds read, UB, leak or other exception fails the run.
// ONEBIT_FUZZ_SECONDS bounds the time (default 20), ONEBIT_FUZZ_SEED replays a run; the seed is
// printed first. Self-contained on purpose (no GoogleTest: it is not built with the sanitizers).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"
#include "onebit/formats/parquet/file_reader.h"

// A file that claims billions of values makes the reader ask for more memory than exists; the
// allocator must then fail (std::bad_alloc, which the reader turns into an onebit::Error) instead of
// ASan aborting the process.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1:max_allocation_size_mb=2048"; }

namespace {

using namespace onebit;

struct Corpus {
  std::string name;
  std::string bytes;
};

// Where the interesting structure is: the footer (metadata) and the page headers near chunk starts.
size_t pick_offset(std::mt19937_64& rng, const std::string& f) {
  if (f.empty()) return 0;
  uint32_t footer = 0;
  if (f.size() >= 12) std::memcpy(&footer, f.data() + f.size() - 8, 4);
  if (rng() % 2 == 0 && footer > 0 && footer <= f.size() - 12) return f.size() - 8 - footer + rng() % (footer + 8);
  return rng() % f.size();
}

void mutate(std::mt19937_64& rng, std::string& f) {
  static const int64_t kInteresting[] = {0, 1, -1, 127, 128, 255, 0x7fff, 0x8000, 0x7fffffff, -0x80000000LL, 0xffffffffLL};
  int n = 1 + static_cast<int>(rng() % 6);
  for (int k = 0; k < n && !f.empty(); ++k) {
    size_t at = pick_offset(rng, f);
    switch (rng() % 7) {
      case 0:  // flip a bit
        f[at] = static_cast<char>(f[at] ^ (1 << (rng() % 8)));
        break;
      case 1:  // a random byte
        f[at] = static_cast<char>(rng());
        break;
      case 2: {  // an interesting little-endian int32 (lengths, counts)
        int32_t v = static_cast<int32_t>(kInteresting[rng() % std::size(kInteresting)]);
        if (at + 4 <= f.size()) std::memcpy(f.data() + at, &v, 4);
        break;
      }
      case 3: {  // an interesting varint (thrift fields are varints)
        uint64_t v = static_cast<uint64_t>(kInteresting[rng() % std::size(kInteresting)]) << (rng() % 3 * 7);
        for (size_t i = at; i < f.size() && i < at + 5; ++i) {
          f[i] = static_cast<char>((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
          v >>= 7;
        }
        break;
      }
      case 4:  // truncate
        f.resize(at);
        break;
      case 5: {  // delete a few bytes
        size_t len = std::min<size_t>(f.size() - at, 1 + rng() % 8);
        f.erase(at, len);
        break;
      }
      default: {  // duplicate a few bytes
        size_t len = std::min<size_t>(f.size() - at, 1 + rng() % 16);
        f.insert(at, f.substr(at, len));
      }
    }
  }
}

// 0 = decoded, 1 = onebit::Error. Anything else propagates and fails the test.
int decode(const std::string& name, const std::string& bytes, uint64_t& rows) {
  try {
    parquet::FileReader r(name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    parquet::RowGroupData rg;
    for (size_t g = 0; g < r.num_row_groups(); ++g) {
      r.read_row_group(g, rg);
      for (const auto& c : rg.columns)
        for (size_t i = 0; i < c.size(); ++i) rows += c.is_null(i) ? 0 : c.value(i).size() > 0;
    }
    return 0;
  } catch (const Error& e) {
    std::string msg = e.what();
    if (msg.find(name) == std::string::npos || msg.find('\n') != std::string::npos) {
      std::fprintf(stderr, "error message does not name the file on one line: %s\n", msg.c_str());
      std::exit(1);
    }
    return 1;
  }
}

}  // namespace

int main() {
  uint64_t seed;
  const char* env = std::getenv("ONEBIT_FUZZ_SEED");
  seed = env && *env ? std::strtoull(env, nullptr, 0) : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  double seconds = 20;
  if (const char* s = std::getenv("ONEBIT_FUZZ_SECONDS")) seconds = std::atof(s);
  std::printf("parquet fuzz: seed %llu (replay with ONEBIT_FUZZ_SEED=%llu), %.0f s\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed), seconds);
  std::fflush(stdout);

  std::vector<Corpus> corpus;
  const fs::path root(ONEBIT_TEST_FIXTURES);
  for (const char* dir : {"parquet", "hub-fixture"})
    for (const auto& e : fs::recursive_directory_iterator(root / dir))
      if (e.path().extension() == ".parquet" && fs::file_size(e.path()) < (1u << 20))
        corpus.push_back({e.path().filename().string(), read_file(e.path())});
  std::sort(corpus.begin(), corpus.end(), [](const Corpus& a, const Corpus& b) { return a.name < b.name; });
  // The unmutated files decode: the loop below exercises real decoding, not only early rejection.
  uint64_t sink = 0;
  for (const Corpus& c : corpus) {
    if (decode(c.name, c.bytes, sink) != 0) {
      std::fprintf(stderr, "fixture %s does not decode\n", c.name.c_str());
      return 1;
    }
  }

  std::mt19937_64 rng(seed);
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t iters = 0, errors = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    const Corpus& c = corpus[rng() % corpus.size()];
    std::string f = c.bytes;
    mutate(rng, f);
    errors += decode(c.name, f, sink);
    ++iters;
  }
  std::printf("parquet fuzz: %llu mutated files from %zu fixtures, %llu rejected with an error, %llu decoded\n",
              static_cast<unsigned long long>(iters), corpus.size(), static_cast<unsigned long long>(errors),
              static_cast<unsigned long long>(iters - errors));
  if (iters < 100) {
    std::fprintf(stderr, "parquet fuzz: only %llu iterations\n", static_cast<unsigned long long>(iters));
    return 1;
  }
  return 0;
}
