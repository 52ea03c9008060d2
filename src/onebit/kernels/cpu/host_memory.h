#pragma once
// The memory half of Ops<T> for backends whose memory is ordinary host memory (the fast CPU backend
// and the reference): 64-byte aligned, zero-initialised allocations; upload/download are copies, so
// the device-resident interface costs these backends nothing and their results stay bitwise.
#include <cstdlib>
#include <cstring>
#include <new>

#include "onebit/kernels/kernels.h"

namespace onebit::kernels::cpu {

template <typename T>
class HostMemoryOps : public Ops<T> {
 public:
  T* alloc(size_t n) override {
    const size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, bytes ? bytes : 64);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    return static_cast<T*>(p);
  }
  void free(T* p) override { std::free(p); }
  void zero(T* p, size_t n) override { std::memset(p, 0, n * sizeof(T)); }
  void copy(T* dst, const T* src, size_t n) override { std::memcpy(dst, src, n * sizeof(T)); }
  void upload(T* dst, const T* host, size_t n) override { std::memcpy(dst, host, n * sizeof(T)); }
  void download(T* host, const T* src, size_t n) override { std::memcpy(host, src, n * sizeof(T)); }

  void* alloc_bytes(size_t bytes) override {
    const size_t rounded = ((bytes + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, rounded ? rounded : 64);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, rounded ? rounded : 64);
    return p;
  }
  void free_bytes(void* p) override { std::free(p); }
  void zero_bytes(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  void upload_bytes(void* dst, const void* host, size_t bytes) override { std::memcpy(dst, host, bytes); }
  void download_bytes(void* host, const void* src, size_t bytes) override { std::memcpy(host, src, bytes); }
  void copy_bytes(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
};

}  // namespace onebit::kernels::cpu
