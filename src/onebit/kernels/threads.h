#pragma once
// The process's compute thread count. It lives with the kernels because the CPU backend owns the
// thread pool the kernels run on (kernels/cpu/thread_pool.h).
namespace onebit::kernels {

// n <= 0: all cores. Sets the OpenMP pool and the CPU kernel backend's thread count (which keeps
// OpenBLAS itself single-threaded inside that pool); returns the count in effect.
int set_num_threads(int n);

}  // namespace onebit::kernels
