#include "onebit/kernels/cpu/thread_pool.h"

#include <omp.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "onebit/core/error.h"

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
    error_ = nullptr;
    failed_.store(false);
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
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void work() {
    for (;;) {
      const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= n_) return;
      // An exception must not escape: on a worker it would call std::terminate, on the caller it
      // would leave workers running items whose lambda is gone. The first one is kept and rethrown
      // by run() once every item is accounted for; items not yet started are then skipped.
      if (!failed_.load(std::memory_order_relaxed)) {
        try {
          fn_(ctx_, i);
        } catch (...) {
          std::lock_guard<std::mutex> lk(error_mu_);
          if (!error_) error_ = std::current_exception();
          failed_.store(true);
        }
      }
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
  std::mutex caller_mu_, mu_, error_mu_;
  std::exception_ptr error_;
  std::atomic<bool> failed_{false};
  std::condition_variable cv_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int64_t> next_{0}, done_{0};
  std::atomic<int> active_{0}, sleepers_{0};
  std::atomic<bool> open_{false}, stop_{false};
  void (*fn_)(void*, int64_t) = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
};

// The pool is created on first use or replaced by set_pool_threads under pool_mu(); kernels read the
// current one through an atomic pointer, so first use from two threads at once creates one pool.
std::mutex& pool_mu() {
  static std::mutex m;
  return m;
}
std::unique_ptr<Pool>& pool_owner() {
  static std::unique_ptr<Pool> p;
  return p;
}
std::atomic<Pool*> g_pool{nullptr};
std::atomic<uint64_t> g_jobs{0};

Pool& pool() {
  if (Pool* p = g_pool.load(std::memory_order_acquire)) return *p;
  std::lock_guard<std::mutex> lk(pool_mu());
  auto& owner = pool_owner();
  if (!owner) {
    owner = std::make_unique<Pool>(omp_get_max_threads());
    g_pool.store(owner.get(), std::memory_order_release);
  }
  return *owner;
}

}  // namespace

void set_pool_threads(int n) {
  // From inside an item this would join the very workers that are running it.
  OB_CHECK(!t_in_parallel, "set_pool_threads: cannot resize the thread pool from inside a parallel region");
  n = std::max(1, n);
  std::lock_guard<std::mutex> lk(pool_mu());
  auto& owner = pool_owner();
  if (!owner || owner->threads() != n) {
    g_pool.store(nullptr, std::memory_order_release);
    owner.reset();
    owner = std::make_unique<Pool>(n);
    g_pool.store(owner.get(), std::memory_order_release);
  }
}

int pool_threads() { return pool().threads(); }
bool in_parallel_region() { return t_in_parallel; }

uint64_t pool_jobs() { return g_jobs.load(std::memory_order_relaxed); }

void parallel_for_impl(int64_t n, void (*fn)(void*, int64_t), void* ctx) {
  g_jobs.fetch_add(1, std::memory_order_relaxed);
  pool().run(n, fn, ctx);
}

}  // namespace onebit::kernels::cpu
