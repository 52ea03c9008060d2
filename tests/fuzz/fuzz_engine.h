#pragma once
// A small mutation fuzzer for onebit's file parsers (gcc has no libFuzzer): each driver names one
// parser; the engine mutates the files of its seed corpus, writes each input to a file (the parsers
// read files) and calls the real parser. onebit::Error is the expected outcome for bad input, and
// it must be one line naming the input file; anything else fails the run: another exception type, a
// crash or an ASan/UBSan report (the drivers are built with -fsanitize=address,undefined), or an
// input that runs past --timeout seconds. Every iteration is derived from (--seed, iteration) alone,
// so `--seed S --iteration I` replays one failure exactly.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "onebit/core/fs.h"

namespace onebit::fuzz {

// splitmix64: tiny, seedable, and the same sequence on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n ? static_cast<size_t>(next() % n) : 0; }
  bool chance(unsigned percent) { return below(100) < percent; }

 private:
  uint64_t s_;
};

// Mutations: byte flips, inserts, deletes, duplicated ranges, splices with another corpus file,
// little-endian integers written over binary headers, and JSON-aware ones (numbers become huge,
// negative, fractional or 1e999; strings become "", newlines, invalid UTF-8; values change type;
// arrays nest deeply).
std::string mutate(std::string input, const std::vector<std::string>& corpus, Rng& rng);

struct Target {
  std::string name;        // "tokenizer_json": the program is fuzz_<name>, the corpus corpus/<name>
  std::string input_name;  // path, relative to the work dir, that each input is written to
  // Once, before the first input (e.g. a checkpoint around the input file).
  std::function<void(const fs::path& work_dir)> setup;
  // Runs the real parser on `input`; throws onebit::Error for bad input.
  std::function<void(const fs::path& input)> run;
};

// Checks that an error from a parser is one line (for errors raised after the input was accepted,
// e.g. while encoding with a loaded tokenizer, which need not name the file).
void expect_one_line(const std::string& message);

// Command line: --corpus DIR (repeatable; files are read recursively), --seconds S (default 10),
// --iterations N, --seed S (default 1), --iteration I (replay one), --timeout S (per input,
// default 20), --replay FILE (run one file as is). Returns the process exit code.
int fuzz_main(int argc, char** argv, const Target& target);

}  // namespace onebit::fuzz
