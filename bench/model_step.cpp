// Forward+backward step time of the Transformer on a preset (default 25m, B=8, T=256, Hard QAT),
// the model part of `onebit train` throughput. Writes bench/results/model_step.json.
// Usage: bench_model_step [config=25m] [B=8] [T=256] [threads=2] [steps=3] [phase=hard|soft|fp] [segments=0]
#include <omp.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "onebit/kernels/cpu/sgemm_avx512.h"
#include "onebit/kernels/cpu/ternary_gemm.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/transformer.h"

using namespace onebit;

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "25m";
  const int B = argc > 2 ? std::atoi(argv[2]) : 8;
  const int T = argc > 3 ? std::atoi(argv[3]) : 256;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const int steps = argc > 5 ? std::atoi(argv[5]) : 3;
  const std::string phase = argc > 6 ? argv[6] : "hard";
  const int segments = argc > 7 ? std::atoi(argv[7]) : 0;
  kernels::cpu_ops().set_num_threads(threads);
  model::ModelConfig cfg = model::load_model_config(name);
  model::Transformer m(cfg);
  m.init_weights(1);
  m.set_checkpoint_segments(segments);
  m.set_quant_state({phase == "fp"     ? model::QuantPhase::FullPrecision
                     : phase == "soft" ? model::QuantPhase::Soft
                                       : model::QuantPhase::Hard,
                     4.0f});
  Rng rng(2);
  std::vector<int32_t> tok((size_t)B * T), tgt((size_t)B * T);
  for (auto& t : tok) t = (int32_t)rng.uniform_int(cfg.vocab_size);
  for (auto& t : tgt) t = (int32_t)rng.uniform_int(cfg.vocab_size);
  auto step = [&] {
    m.zero_grad();
    const float loss = m.forward(tok.data(), tgt.data(), B, T);
    m.backward(1.0f);
    return loss;
  };
  // Process CPU time next to wall time: on a shared machine the wall time of a step depends on what else
  // runs, its CPU time much less (at threads=1 it is the work itself; above, it includes pool spinning).
  auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  };
  step();  // warm-up: arena allocation, page faults
  double best = 1e30, total = 0, cpu_best = 1e30;
  float loss = 0;
  for (int s = 0; s < steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_now();
    loss = step();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cpu_best = std::min(cpu_best, cpu_now() - c0);
    best = std::min(best, dt);
    total += dt;
  }
  const double mean = total / steps;
  const char* gemm = kernels::cpu::sgemm_avx512_available() ? "onebit-avx512" : "openblas";
  const char* ternary = kernels::cpu::ternary_gemm_available() ? "int8-vnni" : "f32-gemm";
  std::printf(
      "%s B=%d T=%d threads=%d phase=%s segments=%d gemm=%s ternary=%s: %.3f s/step mean, %.3f best, %.0f tok/s, "
      "%.3f CPU s/step best, loss %.3f, activations %.1f MiB\n",
      name.c_str(), B, T, threads, phase.c_str(), segments, gemm, ternary, mean, best, B * T / mean, cpu_best, loss,
      m.peak_activation_bytes() / 1048576.0);
  json j = {{"config", name},
            {"B", B},
            {"T", T},
            {"threads", threads},
            {"phase", phase},
            {"segments", segments},
            {"s_per_step_mean", mean},
            {"s_per_step_best", best},
            {"cpu_s_per_step_best", cpu_best},
            {"ternary_forward", ternary},
            {"tok_per_s", B * T / mean},
            {"activation_bytes", m.peak_activation_bytes()},
            {"gemm", gemm},
            {"what", "Transformer forward+backward (no optimizer), bench/model_step.cpp"}};
  fs::create_directories(fs::path(ONEBIT_SOURCE_DIR) / "bench" / "results");
  write_json_atomic(fs::path(ONEBIT_SOURCE_DIR) / "bench" / "results" / "model_step.json", j);
  return 0;
}
