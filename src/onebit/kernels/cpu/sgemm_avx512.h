#pragma once
// Our own SGEMM for CPUs with AVX-512F (runtime-checked), used instead of OpenBLAS where
// available: OpenBLAS 0.3.21 runs its AVX2 "Haswell" kernels on AMD Zen 4 (and this project's machines pin
// OPENBLAS_CORETYPE=Haswell), measured ~125 GFLOPS/core against ~195 for this kernel on the model's shapes.
namespace onebit::kernels::cpu {

// The GEMM path, chosen once from ONEBIT_GEMM: "avx512" (this kernel; an error where the CPU lacks
// AVX-512F), "openblas", or unset/"auto": avx512 where the CPU has it, else openblas. Returns "avx512"
// or "openblas"; tests and benchmarks run once per path by setting it.
const char* gemm_path();
// True when the selected path is this kernel.
bool sgemm_avx512_available();
// Whether the CPU and OS support AVX-512F at all.
bool cpu_has_avx512f();
// Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C; K > 0. With `parallel`, the work is
// spread over the kernels' thread pool (inline when already inside a pool item).
void sgemm_avx512(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                  float beta, float* C, int ldc, bool parallel);

}  // namespace onebit::kernels::cpu
