// GFLOP/s of the CPU GEMMs on the 25m training shapes (N = B*T = 2048 tokens, d 512, ff 1408, vocab 32000,
// LM head in chunks of 1048 rows as the model's arena plans it by default, and of 262 rows as with
// ONEBIT_LOGITS_CHUNK_MIB=32, the default until 2026-12-03): the f32 GEMM for each forward/backward
// shape, and the Hard-phase forward both as f32 GEMM and as the exact int8 x ternary product, and (where
// AMX-BF16 is usable) the Hard-phase backward's dx and dW on the bf16x3 tile path beside their f32 rows.
// Usage: bench_gemm_shapes [threads=1] [min_seconds=0.3]. Prints wall and process-CPU GFLOP/s
// (on a shared machine the CPU figure is the kernel's own speed). Writes bench/results/gemm_shapes.json.
//        bench_gemm_shapes plan [threads=16]: runs nothing; prints how the AVX-512 SGEMM's plan spreads each f32
// shape over that many threads (pool jobs = barriers, tasks, micro-kernel calls per thread from a simulated
// schedule), next to the schedule it replaced (3 jobs per K block and 2048-column block).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <queue>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "onebit/core/json_util.h"
#include "onebit/kernels/cpu/sgemm_avx512.h"
#include "onebit/kernels/cpu/sgemm_plan.h"
#include "onebit/kernels/cpu/bf16x3_gemm.h"
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
  int bf16x3 = 0;  // 1: dx = dy·W_eff, 2: dW += dyᵀ·xq on the AMX-BF16 bf16x3 backward (Hard phase)
};

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
      {"bwd dx q/k/v/o  bf16x3 AMX", false, false, false, 2048, 512, 512, 0, 1},
      {"bwd dx gate/up  bf16x3 AMX", false, false, false, 2048, 512, 1408, 1, 1},
      {"bwd dx down     bf16x3 AMX", false, false, false, 2048, 1408, 512, 0, 1},
      {"bwd dW q/k/v/o  bf16x3 AMX", true, false, false, 512, 512, 2048, 1, 2},
      {"bwd dW gate/up  bf16x3 AMX", true, false, false, 1408, 512, 2048, 1, 2},
      {"bwd dW down     bf16x3 AMX", true, false, false, 512, 1408, 2048, 1, 2},
      {"head fwd   x·Wᵀ (262 rows)", false, true, false, 262, 32000, 512, 0},
      {"head dx    dl·W (262 rows)", false, false, false, 262, 512, 32000, 0},
      {"head dW    dlᵀ·x (262 rows)", true, false, false, 32000, 512, 262, 1},
      {"head fwd   x·Wᵀ (1048 rows)", false, true, false, 1048, 32000, 512, 0},
      {"head dx    dl·W (1048 rows)", false, false, false, 1048, 512, 32000, 0},
      {"head dW    dlᵀ·x (1048 rows)", true, false, false, 32000, 512, 1048, 1},
};

// The schedule before the plan (main until 2026-12-02), for comparison: per 2048-column block and K block, pack B,
// pack A, then mblocks x jgroups tasks of 192 rows x a group of 32-column panels: three jobs each.
kernels::cpu::SgemmBalance old_balance(int M, int N, int K, int threads) {
  constexpr int MR = 12, NR = 32, KC = 256, MC = 192, NC = 2048;
  kernels::cpu::SgemmBalance b;
  b.per_thread.assign(threads, 0);
  const int kblocks = std::max(1, (K + KC / 2) / KC), kc = (K + kblocks - 1) / kblocks, mblocks = (M + MC - 1) / MC;
  for (int j0 = 0; j0 < N; j0 += NC) {
    const int npanels = (std::min(NC, N - j0) + NR - 1) / NR;
    const int jgroups = std::clamp((8 * threads + mblocks - 1) / mblocks, 1, npanels);
    for (int p0 = 0; p0 < K; p0 += kc) {
      b.jobs += 3;
      using Load = std::pair<int64_t, int>;
      std::priority_queue<Load, std::vector<Load>, std::greater<Load>> q;
      for (int t = 0; t < threads; ++t) q.push({0, t});
      std::vector<int64_t> load(threads, 0);
      for (int t = 0; t < mblocks * jgroups; ++t, ++b.tasks) {
        const int ib0 = (t / jgroups) * MC, g = t % jgroups, rows = std::min(M, ib0 + MC) - ib0;
        const int64_t work = (int64_t)((rows + MR - 1) / MR) * (npanels * (g + 1) / jgroups - npanels * g / jgroups);
        auto [l, th] = q.top();
        q.pop();
        load[th] = l + work;
        q.push({l + work, th});
      }
      b.critical += *std::max_element(load.begin(), load.end());
      for (int t = 0; t < threads; ++t) b.per_thread[t] += load[t];
    }
  }
  return b;
}

void print_balance(const char* who, const kernels::cpu::SgemmBalance& b) {
  const auto [lo, hi] = std::minmax_element(b.per_thread.begin(), b.per_thread.end());
  std::printf("   %-4s %4lld jobs %5lld tasks  calls/thread %6lld..%6lld  critical path %6lld  balance %5.1f%%\n", who,
              (long long)b.jobs, (long long)b.tasks, (long long)*lo, (long long)*hi, (long long)b.critical,
              100.0 * b.efficiency());
}

int print_plans(int threads) {
  std::printf("f32 GEMM plans at %d threads (work in 12x32 micro-kernel calls over one K block)\n", threads);
  for (const Shape& s : shapes) {
    if (s.ternary || s.bf16x3) continue;
    const kernels::cpu::SgemmPlan p = kernels::cpu::plan_sgemm(s.M, s.N, s.K, threads);
    const kernels::cpu::SgemmChunk c = p.chunk(0, 0, 0);
    std::printf("%-30s M=%5d N=%5d K=%5d  %d K blocks of %d, KxMxN chunks %dx%dx%d, %d segments, grid %dx%d\n", s.what,
                s.M, s.N, s.K, p.kblocks, p.kc, p.kchunks(), p.mchunks(), p.nchunks(), c.segments, c.mparts, c.nparts);
    const kernels::cpu::SgemmBalance b = kernels::cpu::sgemm_balance(p);
    print_balance("new", b);
    std::printf("        per thread:");
    for (int64_t w : b.per_thread) std::printf(" %lld", (long long)w);
    std::printf("\n");
    print_balance("old", old_balance(s.M, s.N, s.K, threads));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "plan") == 0) return print_plans(argc > 2 ? std::atoi(argv[2]) : 16);
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const double min_s = argc > 2 ? std::atof(argv[2]) : 0.3;
  kernels::Ops<float>& ops = kernels::cpu_ops();
  ops.set_num_threads(threads);
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  json rows = json::array();
  std::printf("threads=%d gemm=%s ternary=%s backward=%s\n", threads,
              kernels::cpu::sgemm_avx512_available() ? "onebit-avx512" : "openblas",
              kernels::cpu::ternary_gemm_available() ? "int8-vnni" : "unavailable",
              kernels::cpu::bf16x3_available() ? "bf16x3-amx" : "f32 (no AMX-BF16 or ONEBIT_AMX=off)");
  for (const Shape& s : shapes) {
    if (s.ternary && !kernels::cpu::ternary_gemm_available()) continue;
    if (s.bf16x3 && !kernels::cpu::bf16x3_available()) continue;
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
    // bf16x3 rows: dx: A = dy[M tokens, K = out], W_eff[K = out, N = in] hard ternary. dW: A = dy[K tokens,
    // M = out], B = x[K tokens, N = in] int8-quantized. The GFLOP count is 2·M·N·K, not per bf16 part.
    kernels::cpu::Bf16x3Weights bw;
    if (s.bf16x3 == 1) {
      kernels::QuantScale q;
      ops.weight_quant_scale(&q, B.data(), B.size(), kernels::WeightQuant::Ternary);
      ops.weight_quantize(B.data(), B.data(), B.size(), kernels::WeightQuant::Ternary, &q, 0.0f);
      kernels::cpu::bf16x3_pack_weights(bw, B.data(), s.K, s.N, q.scale);
    } else if (s.bf16x3 == 2) {
      ops.act_quant_int8(B.data(), B.data(), s.K, s.N);
    }
    auto once = [&] {
      if (s.bf16x3 == 1)
        kernels::cpu::bf16x3_backward_dx(C.data(), s.beta, A.data(), s.M, bw);
      else if (s.bf16x3 == 2)
        kernels::cpu::bf16x3_backward_dw(C.data(), A.data(), B.data(), s.K, s.M, s.N);
      else if (s.ternary)
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
