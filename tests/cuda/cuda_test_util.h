#pragma once
// Helpers for the CUDA kernel tests: device buffers, bf16 round trips, the seed and the GPU check.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "onebit/kernels/cuda/cuda_kernels.h"

namespace onebit::kernels::cuda::testing {

// Every case calls this first: without a visible GPU the case is skipped, not failed (CI has nvcc but
// no GPU; the kernels still compile and link there).
#define ONEBIT_REQUIRE_GPU()                                                              \
  do {                                                                                    \
    if (!::onebit::kernels::cuda::device_available())                                     \
      GTEST_SKIP() << "no CUDA device is visible; the CUDA kernels are only compiled here"; \
  } while (0)

// Fresh inputs every run; ONEBIT_TEST_SEED=<n> replays one. The seed is printed so a failure can be
// replayed.
inline uint64_t test_seed() {
  static const uint64_t base = [] {
    const char* env = std::getenv("ONEBIT_TEST_SEED");
    const uint64_t s = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
    std::printf("cuda tests: ONEBIT_TEST_SEED=%llu\n", (unsigned long long)s);
    return s;
  }();
  static uint64_t n = 0;
  return base + 1000003ull * (n++);
}

inline std::vector<float> randn(size_t n, uint64_t seed, double scale = 1.0, double mean = 0.0) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> d(mean, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = (float)d(g);
  return v;
}

// Rounds to bf16 in place: the value the GPU will see, so the reference gets exactly the same input.
inline std::vector<float> bf16_exact(std::vector<float> v) {
  for (auto& x : v) x = to_float(to_bf16(x));
  return v;
}

// Sets environment variables for its lifetime and restores them after: for a backend made in that scope (it reads
// its switches when it is made) and for processes spawned in it (they copy the environment at fork).
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, std::string>& vars) {
    for (const auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved_[k] = old ? std::optional<std::string>(old) : std::nullopt;
      ::setenv(k.c_str(), v.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : saved_)
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
      else ::unsetenv(k.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

// Relative tolerance of one bf16 rounding of an f32 result: half a bf16 ulp (at most 2^-8 of the
// value) plus 1e-5 for the f32 arithmetic before it.
constexpr double kBf16Rtol = 1.0 / 256 + 1e-5;

inline float bf16_ulp(float x) {  // spacing of bf16 numbers at |x|
  int e;
  std::frexp(std::max(std::abs(x), 1e-30f), &e);
  return std::ldexp(1.0f, e - 8);
}

// A GEMM shape for parameterised tests, printed in test names (ctest -R can select one).
struct GemmShape {
  int M, N, K;
};
inline std::ostream& operator<<(std::ostream& os, const GemmShape& s) {
  return os << "M" << s.M << "_N" << s.N << "_K" << s.K;
}

// A typed device buffer (RAII).
template <typename T>
class Dev {
 public:
  explicit Dev(size_t n) : n_(n), p_(static_cast<T*>(device_alloc(sizeof(T) * std::max<size_t>(n, 1)))) {}
  ~Dev() { device_free(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  T* get() const { return p_; }
  size_t size() const { return n_; }
  void put(const std::vector<T>& h) {
    EXPECT_EQ(h.size(), n_);
    upload(p_, h.data(), sizeof(T) * n_);
  }
  std::vector<T> take() const {
    std::vector<T> h(n_);
    download(h.data(), p_, sizeof(T) * n_);
    return h;
  }

 private:
  size_t n_;
  T* p_;
};

// bf16 device buffer filled from f32 (rounded) / read back as f32.
class DevBf16 : public Dev<bf16> {
 public:
  explicit DevBf16(size_t n) : Dev<bf16>(n) {}
  explicit DevBf16(const std::vector<float>& v) : Dev<bf16>(v.size()) { put_f32(v); }
  void put_f32(const std::vector<float>& v) {
    std::vector<bf16> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = to_bf16(v[i]);
    put(h);
  }
  std::vector<float> take_f32() const {
    const auto h = take();
    std::vector<float> v(h.size());
    for (size_t i = 0; i < h.size(); ++i) v[i] = to_float(h[i]);
    return v;
  }
};

// |got - want| <= atol + rtol |want| for all elements; reports the first failure and the worst error.
template <typename A, typename B>
void expect_close(const std::vector<A>& got, const std::vector<B>& want, double rtol, double atol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i], err = std::abs(g - w);
    if (!(err <= atol + rtol * std::abs(w))) {
      if (bad++ == 0) first = i;
    }
    if (err > worst || std::isnan(err)) worst = err;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements off; first [" << first
                     << "] got " << (double)got[first] << " want " << (double)want[first] << "; worst error "
                     << worst;
}

}  // namespace onebit::kernels::cuda::testing
