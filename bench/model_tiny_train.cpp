// Scratch check that configs/tiny.json learns: bytes of tinyshakespeare, plain AdamW, the three-phase
// quantization schedule, held-out loss on the last 10% of the text. Not the trainer (src/onebit/train);
// just the model's own sanity figure. Writes bench/results/tiny_train.json.
// Usage: bench_tiny_train [seconds=240] [B=16] [T=128] [threads=2] [lr=3e-3]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/transformer.h"

using namespace onebit;

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 240;
  const int B = argc > 2 ? std::atoi(argv[2]) : 16;
  const int T = argc > 3 ? std::atoi(argv[3]) : 128;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const float lr_max = argc > 5 ? std::atof(argv[5]) : 3e-3f;
  kernels::cpu_ops().set_num_threads(threads);
  const std::string text = read_file("/work/shared/data/tinyshakespeare/input.txt");
  const size_t split = text.size() * 9 / 10;
  model::Transformer m(model::load_model_config("tiny"));
  m.init_weights(1);
  const size_t n = m.num_params();
  std::vector<float> mom(n, 0.0f), var(n, 0.0f);
  Rng rng(7);
  std::vector<int32_t> tok((size_t)B * T), tgt((size_t)B * T);
  auto batch = [&](size_t lo, size_t hi) {
    for (int b = 0; b < B; ++b) {
      const size_t s = lo + rng.uniform_int(hi - lo - T - 1);
      for (int t = 0; t < T; ++t) {
        tok[(size_t)b * T + t] = (uint8_t)text[s + t];
        tgt[(size_t)b * T + t] = (uint8_t)text[s + t + 1];
      }
    }
  };
  auto eval = [&] {
    m.set_training(false);
    Rng saved = rng;
    rng = Rng(99);
    double sum = 0;
    for (int i = 0; i < 8; ++i) {
      batch(split, text.size());
      sum += m.forward(tok.data(), tgt.data(), B, T);
    }
    rng = saved;
    m.set_training(true);
    return sum / 8;
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  int step = 0;
  float loss = 0;
  while (elapsed() < seconds) {
    const double frac = elapsed() / seconds;  // schedule by time so the run fits its budget
    model::QuantState qs;
    qs.phase = frac < 0.1   ? model::QuantPhase::FullPrecision
               : frac < 0.3 ? model::QuantPhase::Soft
                            : model::QuantPhase::Hard;
    qs.k = 2.0f + 18.0f * (float)std::max(0.0, (frac - 0.1) / 0.2);
    m.set_quant_state(qs);
    const float lr = lr_max * (step < 50 ? (step + 1) / 50.0f : (float)(0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * frac))));
    batch(0, split);
    m.zero_grad();
    loss = m.forward(tok.data(), tgt.data(), B, T);
    m.backward(1.0f);
    auto p = m.params();
    auto g = m.grads();
    double gn = 0;
    for (size_t i = 0; i < n; ++i) gn += (double)g[i] * g[i];
    const float clip = (float)std::min(1.0, 1.0 / (std::sqrt(gn) + 1e-6));
    ++step;
    const float b1 = 0.9f, b2 = 0.95f, c1 = 1 - std::pow(b1, step), c2 = 1 - std::pow(b2, step);
    for (const auto& info : m.params_info()) {
      const float wd = info.decay ? 0.1f : 0.0f;
      for (size_t i = info.offset; i < info.offset + info.numel; ++i) {
        const float gi = g[i] * clip;
        mom[i] = b1 * mom[i] + (1 - b1) * gi;
        var[i] = b2 * var[i] + (1 - b2) * gi * gi;
        p[i] -= lr * ((mom[i] / c1) / (std::sqrt(var[i] / c2) + 1e-8f) + wd * p[i]);
      }
    }
    if (step % 50 == 0) {
      const auto ws = m.weight_stats();
      std::printf("step %4d  %.0fs  phase %d k %.1f  train %.3f  zero-frac %.3f\n", step, elapsed(), (int)qs.phase,
                  qs.k, loss, ws.zero);
      std::fflush(stdout);
    }
  }
  m.set_quant_state({model::QuantPhase::Hard, 0});
  const double held = eval();
  std::printf("tiny: %d steps in %.0f s (B=%d T=%d), final train %.3f, held-out %.3f nats/byte (hard ternary)\n", step,
              elapsed(), B, T, loss, held);
  const json j = {{"config", "tiny"},
                  {"steps", step},
                  {"seconds", elapsed()},
                  {"B", B},
                  {"T", T},
                  {"threads", threads},
                  {"train_loss", loss},
                  {"heldout_loss", held},
                  {"what", "bench/model_tiny_train.cpp: AdamW, FP 10% -> soft 20% -> hard, time-based schedule"}};
  fs::create_directories(fs::path(ONEBIT_SOURCE_DIR) / "bench" / "results");
  write_json_atomic(fs::path(ONEBIT_SOURCE_DIR) / "bench" / "results" / "tiny_train.json", j);
  return 0;
}
