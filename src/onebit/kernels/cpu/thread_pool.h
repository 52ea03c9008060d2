#pragma once
// The thread pool behind every fast CPU kernel. Work is split into items claimed from a shared
// counter; the calling thread works too and returns as soon as every item is done, so a worker the OS
// has not scheduled yet never holds the caller up. (OpenMP's fork/join barrier waits for every
// thread: on a busy 2-core machine that costs a scheduler time slice per kernel call, and a step
// makes hundreds of calls.) Nested calls from inside an item run inline. If an item throws, items not
// yet started are skipped and the first exception is rethrown to the caller once no item is running.
// set_pool_threads must not be called from inside an item (it throws).
#include <algorithm>
#include <cstdint>

namespace onebit::kernels::cpu {

void set_pool_threads(int n);
int pool_threads();
bool in_parallel_region();
// Jobs handed to the pool's threads so far in this process (each ends when its last item is done: one
// barrier). Jobs run inline (one item, one thread, nested) are not counted. For tests and benchmarks that
// count a kernel's synchronisation.
uint64_t pool_jobs();
void parallel_for_impl(int64_t n, void (*fn)(void*, int64_t), void* ctx);

// Calls f(i) for every i in [0, n), items spread over the pool.
template <typename F>
void parallel_for(int64_t n, F&& f) {
  if (n <= 0) return;
  if (n == 1 || pool_threads() == 1 || in_parallel_region()) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  parallel_for_impl(
      n, [](void* c, int64_t i) { (*static_cast<std::remove_reference_t<F>*>(c))(i); }, &f);
}

// Number of chunks for n units of work with at least `min_per_chunk` units each: a few per thread, so
// a thread that starts late just takes fewer.
inline int64_t num_chunks(int64_t n, int64_t min_per_chunk) {
  const int64_t by_size = n / std::max<int64_t>(1, min_per_chunk);
  return std::max<int64_t>(1, std::min<int64_t>(by_size, 4 * (int64_t)pool_threads()));
}

// Calls f(lo, hi) over consecutive ranges covering [0, n).
template <typename F>
void parallel_ranges(int64_t n, int64_t min_per_chunk, F&& f) {
  const int64_t chunks = num_chunks(n, min_per_chunk);
  if (chunks == 1) {
    f(int64_t(0), n);
    return;
  }
  parallel_for(chunks, [&](int64_t c) { f(n * c / chunks, n * (c + 1) / chunks); });
}

}  // namespace onebit::kernels::cpu
