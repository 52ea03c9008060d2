#include "onebit/kernels/cpu/thread_pool.h"

#include <omp.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace onebit::kernels::cpu {
namespace {

thread_local bool t_in_parallel = false;

// Tells the core we are spin-waiting (frees pipeline resources for a sibling hyperthread).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
constexpr int kSpinIters = 20000;  // ~0.1 ms of pause before a worker sleeps

class Pool {
 public:
  explicit Pool(int threads) : threads_(std::max(1, threads)) {
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this] { worker(); });
  }
  ~Pool() {
    stop_.store(true);
    { std::lock_guard<std::mutex> lk(mu_); }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int threads() const { return threads_; }

  void run(int64_t n, void (*fn)(void*, int64_t), void* ctx) {
    std::lock_guard<std::mutex> caller(caller_mu_);  // one job at a time
    fn_ = fn;
    ctx_ = ctx;
    n_ = n;
    next_.store(0);
    done_.store(0);
    open_.store(true);
    gen_.fetch_add(1);
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_.notify_all();
    }
    t_in_parallel = true;
    work();
    t_in_parallel = false;
    for (int s = 0; done_.load(std::memory_order_acquire) < n_; ++s) {
      if (s < kSpinIters)
        cpu_relax();
      else
        std::this_thread::yield();
    }
    // Close the job: a worker that wakes from now on must not touch the fields we will rewrite.
    open_.store(false);
    while (active_.load() > 0) cpu_relax();
  }

 private:
  void work() {
    for (;;) {
      const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= n_) return;
      fn_(ctx_, i);
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  void worker() {
    t_in_parallel = true;
    uint64_t seen = 0;
    for (;;) {
      uint64_t g = gen_.load();
      for (int s = 0; g == seen && !stop_.load(); ++s) {
        if (s < kSpinIters) {
          cpu_relax();
        } else {
          std::unique_lock<std::mutex> lk(mu_);
          sleepers_.fetch_add(1);
          cv_.wait(lk, [&] { return gen_.load() != seen || stop_.load(); });
          sleepers_.fetch_sub(1);
        }
        g = gen_.load();
      }
      if (stop_.load()) return;
      seen = g;
      active_.fetch_add(1);
      if (open_.load() && gen_.load() == g) work();
      active_.fetch_sub(1);
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex caller_mu_, mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int64_t> next_{0}, done_{0};
  std::atomic<int> active_{0}, sleepers_{0};
  std::atomic<bool> open_{false}, stop_{false};
  void (*fn_)(void*, int64_t) = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
};

std::unique_ptr<Pool>& pool_ptr() {
  static std::unique_ptr<Pool> p;
  return p;
}

Pool& pool() {
  auto& p = pool_ptr();
  if (!p) p = std::make_unique<Pool>(omp_get_max_threads());
  return *p;
}

}  // namespace

void set_pool_threads(int n) {
  auto& p = pool_ptr();
  if (!p || p->threads() != std::max(1, n)) {
    p.reset();
    p = std::make_unique<Pool>(n);
  }
}

int pool_threads() { return pool().threads(); }
bool in_parallel_region() { return t_in_parallel; }

void parallel_for_impl(int64_t n, void (*fn)(void*, int64_t), void* ctx) { pool().run(n, fn, ctx); }

}  // namespace onebit::kernels::cpu
