#include "onebit/kernels/threads.h"

#include <omp.h>

#include <algorithm>
#include <thread>

#include "onebit/kernels/kernels.h"

namespace onebit::kernels {

int set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // The CPU backend takes its parallelism from its own pool and pins OpenBLAS to one thread inside
  // it (see kernels/cpu/fast_gemm.cpp), so the count goes to the backend, not to OpenBLAS. OpenMP
  // still runs the tokenizer's encode_batch.
  omp_set_num_threads(n);
  cpu_ops().set_num_threads(n);
  return n;
}

}  // namespace onebit::kernels
