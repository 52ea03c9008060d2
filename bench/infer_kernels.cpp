// Single-thread speed of the runtime's packed matmul on the decode (GEMV, 1 token) and prefill
// (GEMM, 64 tokens) shapes of the benchmark models, per kernel path and weight layout: GB/s of
// weights streamed (decode) and GMAC/s (prefill), per second of this thread's CPU time (the dev VM is
// shared, wall time would measure the neighbours). Usage: bench_infer_kernels [seconds per case]
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "onebit/infer/matmul.h"
#include "onebit/infer/packed_weights.h"
#include "onebit/kernels/cpu/thread_pool.h"

using namespace onebit::infer;

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.3;
  onebit::kernels::cpu::set_pool_threads(1);
  struct Shape {
    int rows, cols;
    const char* what;
  };
  const Shape shapes[] = {{768, 768, "125m q/o"},        {5632, 2048, "1b gate/up"}, {2048, 5632, "1b down"},
                          {6912, 2560, "2B4T gate/up"}, {2560, 6912, "2B4T down"}};
  std::mt19937_64 g(1);
  std::printf("%-14s %-15s %-11s %10s %12s\n", "shape", "layout", "path", "GEMV GB/s", "GEMM GMAC/s");
  for (const Shape& s : shapes) {
    std::vector<int8_t> codes((size_t)s.rows * s.cols);
    for (auto& c : codes) c = (int8_t)((int)(g() % 3) - 1);
    std::vector<float> x((size_t)64 * s.cols);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(g);
    QuantizedActs xq;
    xq.reserve(64, s.cols);
    xq.quantize(x.data(), 64, s.cols, s.cols);
    std::vector<float> y((size_t)64 * s.rows);
    for (PackedFormat f : {PackedFormat::Ternary2, PackedFormat::Ternary1_6}) {
      const PackedMatrix W = pack_ternary(codes, s.rows, s.cols, 0.02f, f);
      std::vector<std::pair<std::string, const DotKernels*>> tables;
      for (KernelPath p : supported_paths()) tables.push_back({to_string(p), &dot_kernels(p)});
#if defined(__x86_64__)  // both decode GEMVs explicitly (avx512vnni is one of them, by vendor; 2-bit only)
      if (path_supported(KernelPath::Avx512Vnni) && f == PackedFormat::Ternary2) {
        tables.push_back({"avx512-shift", &avx512vnni_shifted_kernels()});
        tables.push_back({"avx512-mask", &avx512vnni_masked_kernels()});
      }
#endif
      for (const auto& [name, kp] : tables) {
        const DotKernels& k = *kp;
        auto rate = [&](int N) {
          auto cpu = [] {
            timespec ts;
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
            return ts.tv_sec + ts.tv_nsec * 1e-9;
          };
          int iters = 0;
          const double t0 = cpu();
          double el = 0;
          do {
            matmul(W, x.data(), s.cols, &xq, N, y.data(), s.rows, k);
            ++iters;
            el = cpu() - t0;
          } while (el < seconds);
          return iters / el;
        };
        const double gemv = rate(1) * W.bytes() / 1e9;
        const double gemm = rate(64) * 64.0 * s.rows * s.cols / 1e9;
        std::printf("%-14s %-15s %-11s %10.2f %12.1f\n", s.what, to_string(f), name.c_str(), gemv, gemm);
      }
    }
  }
}
