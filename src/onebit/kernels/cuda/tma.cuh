#pragma once
// Hopper's tensor memory accelerator (TMA, sm_90) and the shared-memory barriers (mbarrier) that track
// its copies: what a warp-specialised kernel needs to stream tiles without the computing warps issuing
// loads (the int8 GEMM of int8_gemm.cu). A tensor map (CUtensorMap, encoded on the host by the driver's
// cuTensorMapEncodeTiled) describes a 2-D row-major matrix and the box one copy moves; boxes past the
// matrix's edge read as zeros and are clipped on store. Device code is sm_90a only, like wgmma.cuh's.
#include <cuda.h>

#include <cstdint>

#include "onebit/kernels/cuda/wgmma.cuh"

namespace onebit::kernels::cuda {

// A 2-D tile map over a row-major matrix of `rows` x `cols` elements of `type`, rows `row_bytes` apart
// (a multiple of 16, as is the base address), moving boxes of box_rows x box_cols elements in the
// 128-byte swizzle (box_cols x element size must be 128 bytes: one swizzle row). Fails with a message
// when the driver has no TMA or rejects the map.
CUtensorMap swizzled_tile_map(const void* base, CUtensorMapDataType type, uint64_t rows, uint64_t cols,
                              uint64_t row_bytes, uint32_t box_rows, uint32_t box_cols);
// A 2-D map as swizzled_tile_map's without a swizzle (box_cols x element size a multiple of 16 bytes): rows
// of per-position statistics such as attention's lse[B, H, T] (rows = B * H, cols = T).
CUtensorMap plain_tile_map(const void* base, CUtensorMapDataType type, uint64_t rows, uint64_t cols,
                           uint64_t row_bytes, uint32_t box_rows, uint32_t box_cols);
// A 4-D map over bf16 heads laid out [B, T, heads, 64] (the attention kernels' q, k, v): a box is box_rows
// consecutive positions of one head of one batch row, 64 x 128-byte rows in the 128-byte swizzle; positions
// past T read as zeros (the box is clipped per batch row, never reaching into the next one). Coordinates
// (innermost first): element 0, head, position, batch row.
CUtensorMap swizzled_head_map(const void* base, int B, int T, int heads, uint32_t box_rows);

namespace tma {

__device__ inline uint32_t smem_addr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

#if ONEBIT_WGMMA
__device__ inline void mbar_init(uint64_t* bar, uint32_t arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(arrivals) : "memory");
}
// Makes the initialised barriers visible to the async proxy (TMA) before anyone uses them.
__device__ inline void fence_barrier_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
// Arrives and announces `bytes` of TMA traffic that must land before the phase completes.
__device__ inline void mbar_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
}
__device__ inline void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
// Waits until the barrier's phase of the given parity has completed. A fresh barrier is in phase 0, so
// waiting for parity 1 returns at once (a producer's first pass over empty buffers).
__device__ inline void mbar_wait(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n}\n" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
}
// Copies the box at (column c0, row r0) into dst; the barrier's transaction count falls by its bytes.
__device__ inline void load_2d(void* dst, const CUtensorMap* map, int c0, int r0, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(r0), "r"(smem_addr(bar))
      : "memory");
}
// The 4-D form (swizzled_head_map): coordinates innermost first.
__device__ inline void load_4d(void* dst, const CUtensorMap* map, int c0, int c1, int c2, int c3, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], "
      "[%6];\n" ::"r"(smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_addr(bar))
      : "memory");
}
// Stores the box in src to (column c0, row r0), clipped to the matrix; one bulk group per commit.
__device__ inline void store_2d(const CUtensorMap* map, int c0, int r0, const void* src) {
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(c0), "r"(r0), "r"(smem_addr(src))
               : "memory");
}
__device__ inline void store_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Waits until at most N committed stores still read shared memory (their buffers may then be rewritten).
template <int N>
__device__ inline void store_wait_read() {
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
}
// Waits until every committed store has written global memory.
__device__ inline void store_wait_all() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }
// Named barrier over `threads` threads (a multiple of 32) of the block; id 0 is __syncthreads'.
__device__ inline void named_barrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
#else
__device__ inline void mbar_init(uint64_t*, uint32_t) { __trap(); }
__device__ inline void fence_barrier_init() { __trap(); }
__device__ inline void mbar_expect_tx(uint64_t*, uint32_t) { __trap(); }
__device__ inline void mbar_arrive(uint64_t*) { __trap(); }
__device__ inline void mbar_wait(uint64_t*, uint32_t) { __trap(); }
__device__ inline void load_2d(void*, const CUtensorMap*, int, int, uint64_t*) { __trap(); }
__device__ inline void load_4d(void*, const CUtensorMap*, int, int, int, int, uint64_t*) { __trap(); }
__device__ inline void store_2d(const CUtensorMap*, int, int, const void*) { __trap(); }
__device__ inline void store_commit() { __trap(); }
template <int N>
__device__ inline void store_wait_read() {
  __trap();
}
__device__ inline void store_wait_all() { __trap(); }
__device__ inline void named_barrier(int, int) { __trap(); }
#endif

// The barriers of a producer/consumer kernel that streams a per-item buffer (item_full / item_empty) and a ring of
// kStages (full / empty per stage), laid out from `bars` (2 + 2 kStages of them): a full barrier completes on the
// bytes the producer announced, an empty one on `consumers` arrivals. Thread 0 initialises them; every thread of
// the block calls this (it ends in __syncthreads).
struct RingBarriers {
  uint64_t *item_full, *item_empty, *full, *empty;
};
template <int kStages>
__device__ inline RingBarriers ring_barriers(uint64_t* bars, uint32_t consumers) {
  const RingBarriers r{bars, bars + 1, bars + 2, bars + 2 + kStages};
  if (threadIdx.x == 0) {
    mbar_init(r.item_full, 1), mbar_init(r.item_empty, consumers);
    for (int s = 0; s < kStages; ++s) mbar_init(&r.full[s], 1), mbar_init(&r.empty[s], consumers);
    fence_barrier_init();
  }
  __syncthreads();
  return r;
}

// A producer's stream of `count` stages through a ring of kStages, each stage two boxes of kBoxBytes (box j of
// map a then of map b, at coordinates (0, c1, j * rows, c3) of 4-D maps such as swizzled_head_map's): waits
// for the stage to be free, announces its bytes, issues both copies. stage and phase are the ring's position,
// carried from one call to the next (the flash-attention v4 kernels stream each work item's K and V tiles).
template <int kStages, int kBoxBytes>
__device__ inline void load_pair_ring(uint8_t* ring, uint64_t* full, uint64_t* empty, const CUtensorMap* a,
                                      const CUtensorMap* b, int c1, int rows, int c3, int count, int& stage,
                                      uint32_t& phase) {
  for (int j = 0; j < count; ++j) {
    mbar_wait(&empty[stage], phase ^ 1);
    uint8_t* st = ring + stage * 2 * kBoxBytes;
    mbar_expect_tx(&full[stage], 2 * kBoxBytes);
    load_4d(st, a, 0, c1, j * rows, c3, &full[stage]);
    load_4d(st + kBoxBytes, b, 0, c1, j * rows, c3, &full[stage]);
    if (++stage == kStages) stage = 0, phase ^= 1;
  }
}

}  // namespace tma
}  // namespace onebit::kernels::cuda
