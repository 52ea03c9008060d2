#include "fuzz_engine.h"

#include <sanitizer/common_interface_defs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "onebit/core/error.h"

// Defaults for every fuzz driver, however it is started (ctest or by hand): a huge allocation
// driven by the input is a bug, reported rather than attempted; UBSan stops at the first report.
extern "C" const char* __asan_default_options() {
  return "allocator_may_return_null=0:max_allocation_size_mb=4096:detect_leaks=1";
}
extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }

namespace onebit::fuzz {
namespace {

// ---- mutations --------------------------------------------------------------------------------

const char* const kNumbers[] = {
    "1e999", "-1e999", "-1", "0", "-0", "1", "2", "3", "255", "256", "65535", "65536", "65537", "16777216",
    "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967295", "4294967296", "4294967297",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551615",
    "18446744073709551616", "1e30", "1e308", "1e-400", "0.5", "-0.5", "1.5", "3.0", "NaN", "Infinity", "1E2"};

const char* const kStrings[] = {"",       "\\n",    "a\\nb",  "\\u0000", "\\r\\n", "\\t",   "\\\"",  "\\\\",
                                "\\u00e9", "\\ud800", "\xff",   "\n",      " ",      "  ",    "\xE2\x96\x81",
                                "<0x41>",  "a b",    "a b c",  "/",       "..",     "\\u2581", "(",    "[",
                                "Regex",   "String", "Sequence", "ByteLevel", "BPE",  "A",     "B",     "F32",
                                "ternary", "f32",    "never",  "always",  "first",  "Removed", "Isolated"};

const char* const kValues[] = {"null", "true", "false", "[]", "{}", "\"\"", "\"x\"", "0", "-1", "[0]", "[-1]",
                               "{\"a\":1}", "[[]]", "1e999", "\"\\n\"", "[\"a\",\"b\"]", "4294967296"};

const uint64_t kInts[] = {0,          1,          2,          3,          4,           7,          8,
                          64,         255,        256,        65535,      65536,       65537,      0x7FFFFFFF,
                          0x80000000, 0xFFFFFFFF, 1ULL << 32, 1ULL << 62, 1ULL << 63,  ~0ULL,      ~0ULL - 7,
                          100 << 20,  (100 << 20) + 1};

bool is_num_char(char c) { return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'; }

// End of the JSON string literal whose opening quote is at `open` (index of the closing quote).
size_t string_end(const std::string& s, size_t open) {
  for (size_t i = open + 1; i < s.size(); ++i) {
    if (s[i] == '\\') ++i;
    else if (s[i] == '"') return i;
  }
  return s.size();
}

// End (one past) of the JSON value starting at `i`, found roughly (strings and brackets balanced).
size_t value_end(const std::string& s, size_t i) {
  if (i >= s.size()) return i;
  if (s[i] == '"') return std::min(s.size(), string_end(s, i) + 1);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (size_t k = i; k < s.size(); ++k) {
      if (s[k] == '"') k = string_end(s, k);
      else if (s[k] == '{' || s[k] == '[') ++depth;
      else if ((s[k] == '}' || s[k] == ']') && --depth == 0) return k + 1;
    }
    return s.size();
  }
  size_t k = i;
  while (k < s.size() && (is_num_char(s[k]) || (s[k] >= 'a' && s[k] <= 'z'))) ++k;
  return std::max(k, i + 1);
}

// A random position holding one of `chars`, or npos.
size_t find_random(const std::string& s, std::string_view chars, Rng& rng) {
  if (s.empty()) return std::string::npos;
  const size_t start = rng.below(s.size());
  for (size_t n = 0; n < s.size(); ++n) {
    size_t i = (start + n) % s.size();
    if (chars.find(s[i]) != std::string_view::npos) return i;
  }
  return std::string::npos;
}

void mutate_once(std::string& s, const std::vector<std::string>& corpus, Rng& rng) {
  const size_t n = s.size();
  switch (rng.below(12)) {
    case 0:  // flip one bit
      if (n) s[rng.below(n)] ^= static_cast<char>(1u << rng.below(8));
      break;
    case 1: {  // one byte becomes a structurally interesting one
      static const char kBytes[] = {'\0', '\xff', '\n', '"', '\\', '{', '}', '[', ']', ',', ':', '\x80', '\xc3', ' ', '-', '0'};
      if (n) s[rng.below(n)] = kBytes[rng.below(sizeof kBytes)];
      break;
    }
    case 2: {  // insert random bytes
      std::string ins(1 + rng.below(8), '\0');
      for (char& c : ins) c = static_cast<char>(rng.next());
      s.insert(rng.below(n + 1), ins);
      break;
    }
    case 3:  // delete a range
      if (n) {
        size_t at = rng.below(n);
        s.erase(at, 1 + rng.below(std::min<size_t>(64, n - at)));
      }
      break;
    case 4:  // duplicate a range elsewhere
      if (n) {
        size_t at = rng.below(n), len = 1 + rng.below(std::min<size_t>(256, n - at));
        s.insert(rng.below(n + 1), s.substr(at, len));
      }
      break;
    case 5: {  // splice: a piece of another corpus file
      const std::string& o = corpus[rng.below(corpus.size())];
      if (o.empty()) break;
      size_t at = rng.below(o.size()), len = 1 + rng.below(std::min<size_t>(512, o.size() - at));
      size_t pos = rng.below(n + 1);
      if (rng.chance(50)) s.insert(pos, o.substr(at, len));
      else s = s.substr(0, pos) + o.substr(at);
      break;
    }
    case 6: {  // a little-endian integer over 1, 2, 4 or 8 bytes (binary headers, counts, widths)
      const size_t w = size_t{1} << rng.below(4);
      if (n < w) break;
      // Aligned offsets hit header fields more often than random ones.
      size_t at = rng.chance(70) ? rng.below(std::min<size_t>(n - w, 64) / w + 1) * w : rng.below(n - w + 1);
      uint64_t v = kInts[rng.below(std::size(kInts))];
      if (rng.chance(20)) v = n - rng.below(16);
      std::memcpy(s.data() + at, &v, w);
      break;
    }
    case 7: {  // a number becomes an extreme one
      size_t i = find_random(s, "-0123456789", rng);
      if (i == std::string::npos) break;
      while (i > 0 && is_num_char(s[i - 1])) --i;
      size_t e = i;
      while (e < n && is_num_char(s[e])) ++e;
      s.replace(i, e - i, kNumbers[rng.below(std::size(kNumbers))]);
      break;
    }
    case 8: {  // a string's contents become empty, a newline, invalid UTF-8, another name...
      size_t q = find_random(s, "\"", rng);
      if (q == std::string::npos) break;
      size_t e = string_end(s, q);
      if (e >= n) break;
      std::string repl = kStrings[rng.below(std::size(kStrings))];
      if (rng.chance(5)) repl.assign(1000 + rng.below(5000), 'a');
      s.replace(q + 1, e - q - 1, repl);
      break;
    }
    case 9: {  // a value changes type
      size_t c = find_random(s, ":,[", rng);
      if (c == std::string::npos) break;
      size_t i = c + 1;
      while (i < n && s[i] == ' ') ++i;
      if (i >= n) break;
      s.replace(i, value_end(s, i) - i, kValues[rng.below(std::size(kValues))]);
      break;
    }
    case 10: {  // deep nesting where a value starts
      size_t c = find_random(s, ":[", rng);
      if (c == std::string::npos) break;
      const size_t depth = rng.chance(50) ? 300 : 100000;
      s.insert(c + 1, std::string(depth, '[') + "1" + std::string(depth, ']'));
      break;
    }
    case 11: {  // a JSON value is copied over another (an array element twice, a key twice)
      size_t a = find_random(s, "\"[{", rng), b = find_random(s, "\"[{0123456789", rng);
      if (a == std::string::npos || b == std::string::npos) break;
      std::string v = s.substr(a, value_end(s, a) - a);
      s.replace(b, value_end(s, b) - b, v);
      break;
    }
  }
}

// ---- the run loop -----------------------------------------------------------------------------

// What a crash report prints: set before each input, read by the death callback and the watchdog.
char g_replay[1024] = "";
std::atomic<int64_t> g_input_started_ms{0};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void print_replay() {
  if (g_replay[0]) {
    ssize_t r = ::write(2, g_replay, std::strlen(g_replay));
    (void)r;
  }
}

// A failed _GLIBCXX_ASSERTIONS check (or any abort) is a failure too: say which input, then die.
void on_abort(int sig) {
  print_replay();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_all(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("fuzz: cannot write " + p.string());
}

struct Options {
  std::vector<fs::path> corpus;
  double seconds = 10;
  uint64_t iterations = UINT64_MAX;
  uint64_t seed = 1;
  int64_t only = -1;
  double timeout = 20;
  fs::path replay;
};

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--corpus") o.corpus.emplace_back(value());
    else if (a == "--seconds") o.seconds = std::stod(value());
    else if (a == "--iterations") o.iterations = std::stoull(value());
    else if (a == "--seed") o.seed = std::stoull(value());
    else if (a == "--iteration") o.only = std::stoll(value());
    else if (a == "--timeout") o.timeout = std::stod(value());
    else if (a == "--replay") o.replay = value();
    else throw std::invalid_argument("unknown argument " + a);
  }
  return o;
}

std::vector<std::string> load_corpus(const std::vector<fs::path>& dirs, std::vector<std::string>* names) {
  std::vector<fs::path> files;
  for (const auto& d : dirs) {
    if (fs::is_regular_file(d)) files.push_back(d);
    else
      for (const auto& e : fs::recursive_directory_iterator(d))
        if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());  // the same order everywhere, so iterations replay
  std::vector<std::string> out;
  for (const auto& f : files) {
    out.push_back(read_all(f));
    names->push_back(f.string());
  }
  return out;
}

}  // namespace

std::string mutate(std::string input, const std::vector<std::string>& corpus, Rng& rng) {
  const size_t rounds = 1 + rng.below(4);
  for (size_t r = 0; r < rounds; ++r) mutate_once(input, corpus, rng);
  constexpr size_t kMaxInput = 4u << 20;
  if (input.size() > kMaxInput) input.resize(kMaxInput);
  return input;
}

void expect_one_line(const std::string& message) {
  if (message.empty() || message.find('\n') != std::string::npos || message.find('\r') != std::string::npos)
    throw std::logic_error("an onebit::Error is not one non-empty line: [" + message + "]");
}

int fuzz_main(int argc, char** argv, const Target& target) {
  const std::string prog = "fuzz_" + target.name;
  Options opt;
  try {
    opt = parse_args(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), e.what());
    return 2;
  }
  const fs::path work = fs::temp_directory_path() / cat("onebit-", prog, "-", ::getpid());
  fs::remove_all(work);
  fs::create_directories(work);
  if (target.setup) target.setup(work);
  const fs::path input = work / target.input_name;
  fs::create_directories(input.parent_path());

  std::vector<std::string> names;
  std::vector<std::string> corpus;
  if (opt.replay.empty()) {
    corpus = load_corpus(opt.corpus, &names);
    if (corpus.empty()) {
      std::fprintf(stderr, "%s: empty seed corpus (pass --corpus DIR)\n", prog.c_str());
      return 2;
    }
  } else {
    corpus.push_back(read_all(opt.replay));
    names.push_back(opt.replay.string());
    opt.only = 0;
  }

  __sanitizer_set_death_callback(print_replay);
  std::signal(SIGABRT, on_abort);
  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const int64_t started = g_input_started_ms.load();
      if (started && now_ms() - started > static_cast<int64_t>(opt.timeout * 1000)) {
        std::fprintf(stderr, "%s: an input ran longer than %.0f s (a hang)\n", prog.c_str(), opt.timeout);
        print_replay();
        std::_Exit(3);
      }
    }
  });

  // Iterations below corpus.size() run each seed file as it is; later ones mutate a seed.
  const int64_t t0 = now_ms();
  uint64_t it = opt.only >= 0 ? static_cast<uint64_t>(opt.only) : 0;
  uint64_t ran = 0, rejected = 0;
  int rc = 0;
  for (; ran < opt.iterations; ++it, ++ran) {
    if (opt.only >= 0 ? ran > 0 : now_ms() - t0 > opt.seconds * 1000) break;
    Rng rng(opt.seed * 0x9E3779B97F4A7C15ULL ^ (it + 1) * 0xD1B54A32D192ED03ULL);
    std::string bytes;
    std::string origin;
    if (it < corpus.size()) {
      bytes = corpus[it];
      origin = names[it];
    } else {
      const size_t base = rng.below(corpus.size());
      bytes = mutate(corpus[base], corpus, rng);
      origin = "mutated " + names[base];
    }
    write_all(input, bytes);
    std::snprintf(g_replay, sizeof g_replay,
                  "%s: failed on iteration %llu (%s); the input is %s; replay: %s --seed %llu --iteration %llu "
                  "(with the same --corpus)\n",
                  prog.c_str(), static_cast<unsigned long long>(it), origin.c_str(), input.c_str(), prog.c_str(),
                  static_cast<unsigned long long>(opt.seed), static_cast<unsigned long long>(it));
    g_input_started_ms = now_ms();
    try {
      target.run(input);
    } catch (const Error& e) {
      ++rejected;
      const std::string msg = e.what();
      if (opt.only >= 0) std::fprintf(stderr, "%s: rejected: %s\n", prog.c_str(), msg.c_str());  // replaying one input
      std::string problem;
      if (msg.empty() || msg.find('\n') != std::string::npos || msg.find('\r') != std::string::npos)
        problem = "the error is not one line";
      else if (msg.find(input.string()) == std::string::npos)
        problem = "the error does not name the input file";
      if (!problem.empty()) {
        std::fprintf(stderr, "%s: %s: [%s]\n", prog.c_str(), problem.c_str(), msg.c_str());
        print_replay();
        rc = 1;
        break;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: an exception other than onebit::Error escaped: %s\n", prog.c_str(), e.what());
      print_replay();
      rc = 1;
      break;
    }
    g_input_started_ms = 0;
  }
  done = true;
  watchdog.join();
  std::printf("%s: seed %llu, %llu inputs (%zu seed files), %llu rejected with onebit::Error, %.1f s: %s\n",
              prog.c_str(), static_cast<unsigned long long>(opt.seed), static_cast<unsigned long long>(ran),
              corpus.size(), static_cast<unsigned long long>(rejected), (now_ms() - t0) / 1000.0,
              rc == 0 ? "ok" : "FAILED");
  if (rc == 0) fs::remove_all(work);
  return rc;
}

}  // namespace onebit::fuzz
