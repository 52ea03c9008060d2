// GEMM: our AVX-512 kernel where the CPU has it, else OpenBLAS (single-threaded); C is split into blocks that the
// pool's threads claim, so all parallelism comes from one pool.
#include <cblas.h>

#include <algorithm>

#include "onebit/kernels/cpu/fast.h"
#include "onebit/kernels/cpu/sgemm_avx512.h"
#include "onebit/kernels/cpu/thread_pool.h"

namespace onebit::kernels::cpu {

void set_threads(int n) {
  openblas_set_num_threads(1);
  set_pool_threads(n);
}

int threads() {
  static const bool pinned = (openblas_set_num_threads(1), true);
  (void)pinned;
  return pool_threads();
}

void gemm_serial(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                 float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
    return;
  }
  if (sgemm_avx512_available()) {
    sgemm_avx512(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, false);
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B,
              ldb, beta, C, ldc);
}

void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
          float beta, float* C, int ldc) {
  const int nt = threads();
  const double flops = 2.0 * M * N * K;
  if (sgemm_avx512_available() && K > 0 && M > 0 && N > 0) {  // threads share its packed panels
    sgemm_avx512(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nt > 1 && flops >= 8e6);
    return;
  }
  // Split the larger of M and N into blocks (multiples of 16, at least 64 wide); two per thread lets
  // a thread that starts late take fewer.
  const bool split_m = M >= N;
  const int len = split_m ? M : N;
  const int blocks = std::min(2 * nt, len / 64);
  if (nt == 1 || flops < 8e6 || blocks < 2) {
    gemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int chunk = ((len + blocks - 1) / blocks + 15) / 16 * 16;
  parallel_for((len + chunk - 1) / chunk, [&](int64_t b) {
    const int lo = (int)b * chunk, hi = std::min(len, lo + chunk);
    if (split_m) {
      const float* Ab = ta ? A + lo : A + (size_t)lo * lda;
      gemm_serial(ta, tb, hi - lo, N, K, alpha, Ab, lda, B, ldb, beta, C + (size_t)lo * ldc, ldc);
    } else {
      const float* Bb = tb ? B + (size_t)lo * ldb : B + lo;
      gemm_serial(ta, tb, M, hi - lo, K, alpha, A, lda, Bb, ldb, beta, C + lo, ldc);
    }
  });
}

}  // namespace onebit::kernels::cpu
