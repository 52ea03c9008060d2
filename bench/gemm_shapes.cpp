// GFLOP/s of the CPU GEMMs on the 25m training shapes (N = B*T = 2048 tokens, d 512, ff 1408, vocab 32000,
// LM head in chunks of 262 rows as the model's arena plans it): the f32 GEMM for each forward/backward
// shape, and the Hard-phase forward both as f32 GEMM and as the exact int8 x ternary product.
// Usage: bench_gemm_shapes [threads=1] [min_seconds=0.3]. Prints wall and process-CPU GFLOP/s
// (on a shared machine the CPU figure is the kernel's own speed). Writes bench/results/gemm_shapes.json.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "onebit/core/json_util.h"
#include "onebit/kernels/cpu/sgemm_avx512.h"
#include "onebit/kernels/cpu/ternary_gemm.h"
#include "onebit/kernels/kernels.h"

using namespace onebit;

namespace {

double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Shape {
  const char* what;
  bool ta, tb, ternary;
  int M, N, K;
  float beta;
};

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const double min_s = argc > 2 ? std::atof(argv[2]) : 0.3;
  kernels::Ops<float>& ops = kernels::cpu_ops();
  ops.set_num_threads(threads);
  const Shape shapes[] = {
      {"fwd q/k/v/o  x·Wᵀ f32", false, true, false, 2048, 512, 512, 0},
      {"fwd q/k/v/o  int8·ternary", false, true, true, 2048, 512, 512, 0},
      {"fwd gate/up  x·Wᵀ f32", false, true, false, 2048, 1408, 512, 0},
      {"fwd gate/up  int8·ternary", false, true, true, 2048, 1408, 512, 0},
      {"fwd down     x·Wᵀ f32", false, true, false, 2048, 512, 1408, 0},
      {"fwd down     int8·ternary", false, true, true, 2048, 512, 1408, 0},
      {"bwd dx q/k/v/o  dy·W", false, false, false, 2048, 512, 512, 0},
      {"bwd dx gate/up  dy·W", false, false, false, 2048, 512, 1408, 1},
      {"bwd dx down     dy·W", false, false, false, 2048, 1408, 512, 0},
      {"bwd dW q/k/v/o  dyᵀ·x", true, false, false, 512, 512, 2048, 1},
      {"bwd dW gate/up  dyᵀ·x", true, false, false, 1408, 512, 2048, 1},
      {"bwd dW down     dyᵀ·x", true, false, false, 512, 1408, 2048, 1},
      {"head fwd   x·Wᵀ (262 rows)", false, true, false, 262, 32000, 512, 0},
      {"head dx    dl·W (262 rows)", false, false, false, 262, 512, 32000, 0},
      {"head dW    dlᵀ·x (262 rows)", true, false, false, 32000, 512, 262, 1},
  };
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  json rows = json::array();
  std::printf("threads=%d gemm=%s ternary=%s\n", threads,
              kernels::cpu::sgemm_avx512_available() ? "onebit-avx512" : "openblas",
              kernels::cpu::ternary_gemm_available() ? "int8-vnni" : "unavailable");
  for (const Shape& s : shapes) {
    if (s.ternary && !kernels::cpu::ternary_gemm_available()) continue;
    std::vector<float> A((size_t)s.M * s.K), B((size_t)s.K * s.N), C((size_t)s.M * s.N);
    for (auto& x : A) x = nd(g);
    for (auto& x : B) x = nd(g);
    std::unique_ptr<kernels::PackedTernary> packed;
    if (s.ternary) {  // x int8-quantized, W hard ternary: the model's Hard-phase operands
      ops.act_quant_int8(A.data(), A.data(), s.M, s.K);
      kernels::QuantScale q;  // the CPU backend's memory is host memory
      ops.weight_quant_scale(&q, B.data(), B.size(), kernels::WeightQuant::Ternary);
      ops.weight_quantize(B.data(), B.data(), B.size(), kernels::WeightQuant::Ternary, &q, 0.0f);
      ops.pack_ternary(packed, B.data(), s.N, s.K, &q);
    }
    auto once = [&] {
      if (s.ternary)
        ops.ternary_linear_forward(C.data(), A.data(), s.M, *packed);
      else
        ops.gemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), s.ta ? s.M : s.K, B.data(), s.tb ? s.K : s.N, s.beta,
                 C.data(), s.N);
    };
    once();
    int reps = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_now();
    double wall = 0;
    do {
      once();
      ++reps;
      wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (wall < min_s);
    const double cpu = cpu_now() - c0, flop = 2.0 * s.M * s.N * s.K * reps;
    std::printf("%-30s M=%5d N=%5d K=%5d  %7.1f GFLOP/s wall  %7.1f GFLOP/s per CPU-second\n", s.what, s.M, s.N, s.K,
                flop / wall / 1e9, flop / cpu / 1e9);
    rows.push_back({{"what", s.what}, {"M", s.M}, {"N", s.N}, {"K", s.K}, {"gflops_wall", flop / wall / 1e9},
                    {"gflops_per_cpu_s", flop / cpu / 1e9}});
  }
  fs::create_directories(fs::path(ONEBIT_SOURCE_DIR) / "bench" / "results");
  write_json_atomic(fs::path(ONEBIT_SOURCE_DIR) / "bench" / "results" / "gemm_shapes.json",
                    json{{"threads", threads}, {"shapes", rows}});
  return 0;
}
