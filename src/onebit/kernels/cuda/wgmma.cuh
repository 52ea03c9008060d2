#pragma once
// Hopper warpgroup MMA (wgmma, sm_90a): what every wgmma kernel needs (the attention kernels of
// attention_wgmma.cuh, the int8 GEMM of int8_gemm.cu). A warpgroup is 4 consecutive warps (128 threads);
// its products read operands from shared memory through 64-bit descriptors and run asynchronously in
// commit groups. Shared operands here use the no-swizzle canonical layout: "core matrices" of 8 rows x
// 16 bytes, 128 contiguous bytes each; a descriptor names the start, the byte stride between core
// matrices along K (LBO) and along M/N (SBO), for both K-major and MN-major operands (PTX ISA; CUTLASS's
// make_gmma_desc).
#include <cstdint>

// wgmma exists only in sm_90a device code; elsewhere the wgmma kernels compile to a trap and the host
// never launches them (attention_wgmma_available(), int8_gemm_available()).
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define ONEBIT_WGMMA 1
#else
#define ONEBIT_WGMMA 0
#endif

namespace onebit::kernels::cuda::wg {

// The no-swizzle descriptor (bits 62-63 = 0); the 128-byte swizzle's are below.
__device__ inline uint64_t desc(const void* smem, uint32_t lbo, uint32_t sbo) {
  const uint32_t a = (uint32_t)__cvta_generic_to_shared(smem);
  return (uint64_t)((a & 0x3FFFF) >> 4) | ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) |
         ((uint64_t)((sbo >> 4) & 0x3FFF) << 32);  // base offset 0, no swizzle (bits 62-63 = 0)
}

// Descriptors of tiles of 128-byte rows in the 128-byte swizzle (what TMA writes with
// CU_TENSOR_MAP_SWIZZLE_128B; layout type 1 in bits 62-63), tiles 1024-byte aligned: the 16-byte chunks
// of row r sit at chunk ^ (r % 8), so 8 rows form a 1024-byte atom and the tensor cores read any 16 bytes
// of 8 rows without bank conflicts.
// K-major (rows are M or N, the 128 bytes K): step kk of 32 bytes of K (16 bf16 or 32 int8 elements)
// starts 32 bytes further into the atom; SBO 1024 bytes (8 rows); LBO unused (16).
__device__ inline uint64_t sw128_kmajor_desc(const void* tile, int kk) {
  return desc(static_cast<const uint8_t*>(tile) + kk * 32, 16, 1024) | (uint64_t{1} << 62);
}
// MN-major (rows are K, each 64 bf16 of N: one atom wide, as a [keys][64] V tile in a P·V product): step
// kk of 16 rows starts 2048 bytes further; SBO 1024 bytes between 8-row groups along K; LBO (between
// atoms along N) unused.
__device__ inline uint64_t sw128_mnmajor_desc(const void* tile, int kk) {
  return desc(static_cast<const uint8_t*>(tile) + kk * 2048, 16, 1024) | (uint64_t{1} << 62);
}

#if ONEBIT_WGMMA
// Orders this warpgroup's register and shared-memory accesses before the wgmma that follow.
__device__ inline void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ inline void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most N of this warpgroup's committed groups are still running.
template <int N>
__device__ inline void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
__device__ inline void wait_all() { wait<0>(); }
// Moves registers between warpgroups of a warp-specialised kernel (setmaxnreg): every thread of the
// warpgroup runs it, with the block's total within the register file.
template <int kRegisters, bool kIncrease>
__device__ inline void set_max_registers() {
  if constexpr (kIncrease)
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
  else
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}
// Shared memory that cp.async (the generic proxy) wrote and wgmma (the async proxy) reads next: each
// writing thread fences after its copies land, before the barrier.
__device__ inline void fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
#else
__device__ inline void fence() { __trap(); }
__device__ inline void commit() { __trap(); }
template <int N>
__device__ inline void wait() {
  __trap();
}
__device__ inline void wait_all() { __trap(); }
__device__ inline void fence_async_smem() { __trap(); }
template <int kRegisters, bool kIncrease>
__device__ inline void set_max_registers() {
  __trap();
}
#endif

}  // namespace onebit::kernels::cuda::wg
