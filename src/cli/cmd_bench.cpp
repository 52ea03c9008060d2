// onebit bench: prefill and decode speed of the packed runtime in the spirit of llama-bench: for each
// thread count, ppN (N prompt tokens in one forward from an empty cache) and tgN (N tokens decoded
// one at a time from an empty cache), repeated, as a table and JSON. Beside each decode row: the
// fraction of the memory-bandwidth limit it reaches, weight bytes per token * tok/s over the read
// bandwidth measured with the same threads (decode must stream every weight once per token). On a
// shared machine wall time measures the neighbours too, so each row also gives the rate per second of
// the process's CPU time times the threads (what the threads would do if they had the cores alone).
#include <sys/utsname.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>

#include "cli/commands.h"
#include "cli/runtime_cli_options.h"
#include "cli/runtime_model.h"
#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/infer/model_weights.h"
#include "onebit/infer/runtime.h"
#include "onebit/kernels/cpu/thread_pool.h"
#include "onebit/kernels/threads.h"
#include "onebit/model/config.h"

namespace onebit::cli {

namespace {
struct BenchArgs {
  std::string model, prompt_lengths = "512", gen_lengths = "128", threads = "1", json_out;
  int repetitions = 2;
  uint64_t seed = 1;
  RuntimeCliOptions runtime;
};

std::vector<int> int_list(const std::string& s, const char* flag, int min) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || item.empty() || v < min)
      fail(flag, " takes a comma-separated list of integers >= ", min, " (got \"", printable(s), "\")");
    out.push_back(v);
  }
  if (out.empty()) fail(flag, " is empty");
  return out;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  utsname u{};
  return ::uname(&u) == 0 ? std::string(u.machine) : std::string("unknown");
}

// Read bandwidth with `threads` threads: the best of 5 passes summing a 512 MiB buffer (far larger
// than any cache), in bytes per second. Each thread reads its share as kStreams concurrent streams, a
// cache line from each per step, as decode's GEMV reads several weight rows at once: one sequential
// stream per thread is held back by how many misses one stream keeps in flight, and measured 8-12 GB/s
// on one Xeon core where decode itself streamed 12.4 GB/s (docs/benchmarks.md, "The read probe").
double read_bandwidth(int threads) {
  constexpr size_t kLine = 64 / sizeof(uint64_t), kStreams = 8;
  const size_t n = (512ull << 20) / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = i;
  kernels::set_num_threads(threads);
  double best = 0;
  std::vector<uint64_t> sums((size_t)threads * 8);
  for (int pass = 0; pass < 5; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    kernels::cpu::parallel_for(threads, [&](int64_t t) {
      const size_t lo = n * t / threads, hi = n * (t + 1) / threads;
      const size_t len = (hi - lo) / (kStreams * kLine) * kLine;  // whole lines per stream
      uint64_t acc[kLine] = {};
      for (size_t i = 0; i < len; i += kLine)
        for (size_t s = 0; s < kStreams; ++s) {
          const uint64_t* line = buf.data() + lo + s * len + i;
          for (size_t k = 0; k < kLine; ++k) acc[k] += line[k];
        }
      uint64_t a = 0;
      for (size_t k = 0; k < kLine; ++k) a += acc[k];
      for (size_t i = lo + kStreams * len; i < hi; ++i) a += buf[i];  // the tail no stream covered
      sums[(size_t)t * 8] = a;  // kept, so the loads are not optimised away
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, (double)n * sizeof(uint64_t) / s);
  }
  // Every word read exactly once: the buffer holds 0..n-1, so the threads' sums add up to n(n-1)/2
  // (mod 2^64); checking it also keeps the loads from being optimised away.
  uint64_t check = 0;
  for (uint64_t v : sums) check += v;
  if (check != (uint64_t)n * (n - 1) / 2) fail("internal: the read-bandwidth probe missed part of its buffer");
  return best;
}

infer::ModelWeights load_weights(const std::string& spec, uint64_t seed) {
  if (spec.rfind("random:", 0) == 0) {
    const model::ModelConfig cfg = model::load_model_config(spec.substr(7));
    return infer::random_model_weights(cfg, seed);
  }
  return load_runtime_model(spec, "", /*want_tokenizer=*/false).weights;
}

struct Row {
  std::string test;
  int threads = 0, tokens = 0, ubatch = 0;  // ubatch: prefill tokens per forward pass (pp rows)
  double mean = 0, sd = 0, bw_fraction = -1, cpu_rate = 0;
};

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void run_bench(const BenchArgs& a) {
  const std::vector<int> pp = int_list(a.prompt_lengths, "-p/--n-prompt", 0);
  const std::vector<int> tg = int_list(a.gen_lengths, "-n/--n-gen", 0);
  const std::vector<int> th = int_list(a.threads, "-t/--threads", 1);
  if (a.repetitions < 1) fail("-r/--repetitions must be >= 1 (got ", a.repetitions, ")");
  infer::RuntimeOptions ropt = a.runtime.resolve();
  std::vector<double> bandwidth;
  for (int t : th) bandwidth.push_back(read_bandwidth(t));  // before the model takes the memory
  infer::ModelWeights w = load_weights(a.model, a.seed);
  const model::ModelConfig cfg = w.config;
  const int need = std::max(*std::max_element(pp.begin(), pp.end()), *std::max_element(tg.begin(), tg.end()));
  if (ropt.context == 0) ropt.context = std::min(cfg.max_position_embeddings, std::max(need, 1));
  if (need > ropt.context)
    fail("-p/-n of ", need, " tokens exceed the context of ", ropt.context, " (--ctx-size; the model allows ",
         cfg.max_position_embeddings, ")");
  infer::Runtime rt(std::move(w), ropt);
  const double bytes_tok = (double)rt.weight_bytes_per_token();
  std::mt19937 gen((uint32_t)a.seed);
  std::vector<int32_t> prompt((size_t)need);
  for (auto& t : prompt) t = (int32_t)(gen() % (uint32_t)cfg.vocab_size);
  std::vector<float> logits((size_t)cfg.vocab_size);
  std::vector<Row> rows;
  // The table names the model by its last path component (random:bench/configs/x.json → random:x).
  std::string model_name = a.model;
  const bool random = model_name.rfind("random:", 0) == 0;
  const std::string path = random ? model_name.substr(7) : model_name;
  model_name = random ? "random:" + fs::path(path).filename().replace_extension().string()
                      : fs::path(path).filename().string();
  if (model_name.empty() || model_name == "random:") model_name = a.model;
  std::printf("| %-28s | %9s | %7s | %-10s | %7s | %6s | %16s | %9s | %11s |\n", "model", "size", "params",
              "kernels", "threads", "test", "t/s", "BW limit", "t/s per CPU");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(11, '-').c_str(),
              std::string(9, '-').c_str(), std::string(12, '-').c_str(), std::string(9, '-').c_str(),
              std::string(8, '-').c_str(), std::string(18, '-').c_str(), std::string(11, '-').c_str(),
              std::string(13, '-').c_str());
  for (size_t ti = 0; ti < th.size(); ++ti) {
    kernels::set_num_threads(th[ti]);
    auto measure = [&](const std::string& test, int n, bool decode) {
      if (n == 0) return;
      std::vector<double> rates;
      double cpu_s = 0;
      // One short untimed warm-up run (every weight paged in and in the caches' path), then the
      // timed repetitions.
      for (int rep = -1; rep < a.repetitions; ++rep) {
        rt.reset();
        const int len = rep < 0 ? std::min(n, decode ? 4 : 64) : n;
        const double c0 = process_cpu_seconds();
        const auto t0 = std::chrono::steady_clock::now();
        if (decode) {
          for (int i = 0; i < len; ++i) rt.forward(std::span<const int32_t>(prompt.data() + i, 1), logits.data());
        } else {
          rt.forward(std::span<const int32_t>(prompt.data(), len), logits.data());
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (rep >= 0) {
          rates.push_back(n / s);
          cpu_s += process_cpu_seconds() - c0;
        }
      }
      Row r;
      r.test = test;
      r.threads = th[ti];
      r.tokens = n;
      if (!decode) r.ubatch = rt.prefill_chunk();
      for (double v : rates) r.mean += v / rates.size();
      for (double v : rates) r.sd += (v - r.mean) * (v - r.mean);
      r.sd = rates.size() > 1 ? std::sqrt(r.sd / (rates.size() - 1)) : 0.0;
      r.cpu_rate = (double)n * rates.size() * th[ti] / cpu_s;
      if (decode) r.bw_fraction = bytes_tok * r.mean / bandwidth[ti];
      const std::string bw = decode ? cat((int)std::lround(100 * r.bw_fraction), "%") : std::string("-");
      char rate[64];
      std::snprintf(rate, sizeof rate, "%.2f ± %.2f", r.mean, r.sd);
      std::printf("| %-28s | %6.0f MiB | %6.2fB | %-10s | %7d | %6s | %16s | %9s | %11.2f |\n",
                  printable(model_name, 28).c_str(), rt.weight_bytes() / 1048576.0, cfg.num_parameters() / 1e9,
                  infer::to_string(rt.kernel_path()), th[ti], test.c_str(), rate, bw.c_str(), r.cpu_rate);
      std::fflush(stdout);
      rows.push_back(r);
    };
    for (int n : pp) measure(cat("pp", n), n, false);
    for (int n : tg) measure(cat("tg", n), n, true);
  }
  std::printf("weights read per decoded token: %.1f MiB; read bandwidth:", bytes_tok / 1048576.0);
  for (size_t ti = 0; ti < th.size(); ++ti) std::printf(" %.1f GB/s (%d threads)", bandwidth[ti] / 1e9, th[ti]);
  std::printf("\n");
  if (!a.json_out.empty()) {
    json j;
    j["model"] = a.model;
    j["config"] = cfg.to_json();
    j["params"] = cfg.num_parameters();
    j["cpu"] = cpu_model();
    j["kernels"] = infer::to_string(rt.kernel_path());
    j["ternary_layout"] = a.runtime.ternary_layout;
    j["lm_head"] = a.runtime.lm_head;
    j["kv_type"] = a.runtime.kv_type;
    j["ubatch_size"] = a.runtime.ubatch;  // 0: auto (each pp row records its own)
    j["repetitions"] = a.repetitions;
    j["weight_bytes"] = rt.weight_bytes();
    j["weight_bytes_per_token"] = rt.weight_bytes_per_token();
    const std::time_t now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    j["date"] = date;
    json bw = json::object();
    for (size_t ti = 0; ti < th.size(); ++ti) bw[std::to_string(th[ti])] = bandwidth[ti];
    j["read_bandwidth_bytes_per_s"] = bw;
    json rs = json::array();
    for (const Row& r : rows) {
      json o{{"test", r.test}, {"threads", r.threads}, {"tokens", r.tokens}, {"tokens_per_s", r.mean},
             {"stddev", r.sd}, {"tokens_per_cpu_s_times_threads", r.cpu_rate}};
      if (r.bw_fraction >= 0) o["bandwidth_fraction"] = r.bw_fraction;
      if (r.ubatch > 0) o["ubatch"] = r.ubatch;
      rs.push_back(o);
    }
    j["rows"] = rs;
    write_json_atomic(a.json_out, j);
  }
}
}  // namespace

void add_bench_command(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "Prefill (ppN) and decode (tgN) speed of the packed runtime, llama-bench style");
  auto a = std::make_shared<BenchArgs>();
  sub->add_option("--model,-m", a->model,
                  "Model dir, .gguf file, or random:<preset or config.json> for random ternary weights of that shape")
      ->required();
  sub->add_option("-p,--n-prompt", a->prompt_lengths, "Prompt lengths for the ppN rows, comma-separated (0 = none)")
      ->capture_default_str();
  sub->add_option("-n,--n-gen", a->gen_lengths, "Generated lengths for the tgN rows, comma-separated (0 = none)")
      ->capture_default_str();
  sub->add_option("-t,--threads", a->threads, "Thread counts, comma-separated")->capture_default_str();
  sub->add_option("-r,--repetitions", a->repetitions, "Timed runs per row (after one warm-up run)")
      ->capture_default_str();
  sub->add_option("--seed", a->seed, "Seed of the random prompt tokens (and random: weights)")->capture_default_str();
  sub->add_option("--json-out", a->json_out, "Also write the rows, machine and settings to this JSON file");
  add_runtime_options(sub, a->runtime);
  sub->callback([a]() { run_bench(*a); });
}

}  // namespace onebit::cli
