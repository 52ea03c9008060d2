// Gradient checkpointing: peak activation memory and step time for segments N = 0, 2, 4, 8 on an
// 8+ layer model. Writes bench/results/checkpoint_memory.json.
// Usage: bench_checkpoint_memory [config=125m] [B=2] [T=256] [threads=2] [steps=2]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/transformer.h"

using namespace onebit;

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "125m";
  const int B = argc > 2 ? std::atoi(argv[2]) : 2;
  const int T = argc > 3 ? std::atoi(argv[3]) : 256;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const int steps = argc > 5 ? std::atoi(argv[5]) : 2;
  kernels::cpu_ops().set_num_threads(threads);
  const model::ModelConfig cfg = model::load_model_config(name);
  if (cfg.num_hidden_layers < 8) fail("bench_checkpoint_memory: ", name, " has fewer than 8 layers");
  model::Transformer m(cfg);
  m.init_weights(1);
  Rng rng(3);
  std::vector<int32_t> tok((size_t)B * T), tgt((size_t)B * T);
  for (auto& t : tok) t = (int32_t)rng.uniform_int(cfg.vocab_size);
  for (auto& t : tgt) t = (int32_t)rng.uniform_int(cfg.vocab_size);
  json rows = json::array();
  std::printf("%s B=%d T=%d threads=%d (layers %d)\n", name.c_str(), B, T, threads, cfg.num_hidden_layers);
  for (int segs : {0, 2, 4, 8}) {
    m.set_checkpoint_segments(segs);
    m.zero_grad();
    m.forward(tok.data(), tgt.data(), B, T);  // warm-up (arena allocation)
    m.backward();
    double best = 1e30;
    for (int s = 0; s < steps; ++s) {
      const auto t0 = std::chrono::steady_clock::now();
      m.zero_grad();
      m.forward(tok.data(), tgt.data(), B, T);
      m.backward();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const size_t bytes = m.peak_activation_bytes();
    std::printf("  segments %d: activations %8.1f MiB, step %.3f s (best of %d)\n", segs, bytes / 1048576.0, best,
                steps);
    rows.push_back({{"segments", segs}, {"activation_bytes", bytes}, {"step_s", best}});
  }
  const json j = {
      {"config", name},
      {"B", B},
      {"T", T},
      {"threads", threads},
      {"rows", rows},
      {"what", "activation arena (kept activations + recompute slots + backward scratch), bench/model_memory.cpp"}};
  fs::create_directories(fs::path(ONEBIT_SOURCE_DIR) / "bench" / "results");
  write_json_atomic(fs::path(ONEBIT_SOURCE_DIR) / "bench" / "results" / "checkpoint_memory.json", j);
  return 0;
}
