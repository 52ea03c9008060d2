// Forward+backward time of the fast CPU attention alone (default: the 25m preset's shape, B 8,
// T 256, 8 heads of 64), best and mean of `reps` calls after a warm-up, wall and process CPU time.
// Usage: bench_attention_cpu [B=8] [T=256] [H=8] [KV=8] [hd=64] [threads=2] [reps=10]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "onebit/core/rng.h"
#include "onebit/kernels/kernels.h"

using namespace onebit;

int main(int argc, char** argv) {
  auto arg = [&](int i, int def) { return argc > i ? std::atoi(argv[i]) : def; };
  const int B = arg(1, 8), T = arg(2, 256), H = arg(3, 8), KV = arg(4, 8), hd = arg(5, 64), threads = arg(6, 2),
            reps = arg(7, 10);
  auto& ops = kernels::cpu_ops();
  ops.set_num_threads(threads);
  const size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd;
  Rng rng(7);
  auto fill = [&](size_t n) {
    float* p = ops.alloc(n);
    for (size_t i = 0; i < n; ++i) p[i] = rng.normal();
    return p;
  };
  float *q = fill(nq), *k = fill(nk), *v = fill(nk), *dy = fill(nq);
  float *y = ops.alloc(nq), *dq = ops.alloc(nq), *dk = ops.alloc(nk), *dv = ops.alloc(nk);
  float* lse = ops.alloc((size_t)B * H * T);
  auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  };
  double fwd_best = 1e30, bwd_best = 1e30, total = 0, cpu_best = 1e30;
  for (int r = 0; r <= reps; ++r) {  // r == 0 is the warm-up
    const double c0 = cpu_now();
    const auto t0 = std::chrono::steady_clock::now();
    ops.attention_forward(y, lse, q, k, v, B, T, H, KV, hd, 0.0f, 0);
    const auto t1 = std::chrono::steady_clock::now();
    ops.attention_backward(dq, dk, dv, dy, q, k, v, y, lse, B, T, H, KV, hd, 0.0f, 0);
    const auto t2 = std::chrono::steady_clock::now();
    if (r == 0) continue;
    fwd_best = std::min(fwd_best, std::chrono::duration<double>(t1 - t0).count());
    bwd_best = std::min(bwd_best, std::chrono::duration<double>(t2 - t1).count());
    total += std::chrono::duration<double>(t2 - t0).count();
    cpu_best = std::min(cpu_best, cpu_now() - c0);
  }
  std::printf(
      "attention B=%d T=%d H=%d KV=%d hd=%d threads=%d: forward %.2f ms best, backward %.2f ms best, fwd+bwd %.2f ms "
      "mean, %.2f CPU ms best\n",
      B, T, H, KV, hd, threads, fwd_best * 1e3, bwd_best * 1e3, total / reps * 1e3, cpu_best * 1e3);
  return 0;
}
