#pragma once
// Software prefetch for the four-row decode GEMVs (dot_avx2.cpp, dot_avx512.cpp). Their four rows are
// four interleaved streams of row_bytes each (512 B at d 2048, 640 B at 2560): too short for the
// hardware prefetchers to pick up before each ends, so without help a single core waits on DRAM for
// most lines. A group of four rows is one contiguous span of 4 * row_bytes, consumed at 128 bytes per
// 32-byte block of each row; the kernels walk the span of the group about kRowPrefetchBytes ahead at
// the same pace. Measured on the dev VM of 2026-12-03 (a 2-core Intel Xeon), one thread, `onebit bench` tg64 (design notes "2-bit
// decode GEMV"): the 2B-4T shape 6.4 -> 11.4-12.6 tok/s, the 1b shape 15.5 -> 23.6-27 tok/s; 2-4 KB
// ahead did best (1 group: +30%, 8 groups: +40%, 2-3 groups: +55-65% at 1b).
#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace onebit::infer {

constexpr size_t kRowPrefetchBytes = 4096;

// The first byte of the four-row group at least one group and about kRowPrefetchBytes after `w`
// (past the matrix's end for its last groups: a prefetch never faults).
inline const char* four_row_prefetch_base(const uint8_t* w, size_t row_bytes) {
  const size_t group = 4 * row_bytes;
  return reinterpret_cast<const char*>(w) + std::max<size_t>(1, (kRowPrefetchBytes + group / 2) / group) * group;
}

// The lines of that group the kernel will read for `blocks` blocks starting at block b.
inline void prefetch_four_row_blocks(const char* ahead, int b, int blocks) {
  const char* p = ahead + (size_t)b * 128;
  for (int j = 0; j < 2 * blocks; ++j) __builtin_prefetch(p + 64 * j, 0, 3);
}

}  // namespace onebit::infer
