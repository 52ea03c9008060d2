#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace onebit::kernels::testing {

template <typename T>
std::vector<T> randn(size_t n, uint64_t seed, double scale = 1.0, double mean = 0.0) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> d(mean, scale);
  std::vector<T> v(n);
  for (auto& x : v) x = (T)d(g);
  return v;
}

inline std::vector<int32_t> randint(size_t n, int hi, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_int_distribution<int32_t> d(0, hi - 1);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

}  // namespace onebit::kernels::testing
