#pragma once
// A thread's reusable scratch for the CPU kernels' packs and tiles.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace onebit::kernels::cpu {

// At least n elements of `v`, 64-byte aligned. Grows only: resizing down and up again would zero-fill
// the regrown part on every call (the callers write every element they later read); for the SGEMM's
// packs between GEMMs of different sizes that was ~1% of a training step in memset.
template <typename T>
T* aligned_scratch(std::vector<T>& v, size_t n) {
  const size_t slack = 64 / sizeof(T);
  if (v.size() < n + slack) v.resize(n + slack);
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t(63));
}

}  // namespace onebit::kernels::cpu
