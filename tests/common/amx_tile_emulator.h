#pragma once
// A scalar emulation of the AMX tile instructions bf16x3_block.h uses (TILEZERO, TILELOADD, TILESTORED,
// TDPBF16PS with every tile 16 rows x 64 bytes), following the Intel SDM's pseudo-code for TDPBF16PS:
// per output row m, per K pair k, per column n, two separate f32 additions of exact bf16 x bf16 products,
// bf16 denormal inputs read as zero, denormal results flushed to zero, round to nearest even. Running
// block_product on it verifies the kernel's addressing and the packers' layouts on any machine; only
// the mapping to the real instructions (bf16x3_tile.cpp) is left to a machine with AMX.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "onebit/kernels/cpu/bf16x3_block.h"
#include "onebit/kernels/cpu/bf16x3_gemm.h"

namespace onebit::kernels::testing {

struct EmulatedTiles {
  struct Tile {
    uint8_t row[16][64];
  };
  static inline thread_local Tile tiles[8];

  static float bf16_in(const uint8_t* p) {  // DAZ: a denormal (or zero) bf16 input is +-0
    uint16_t b;
    std::memcpy(&b, p, 2);
    if ((b & 0x7f80) == 0) b &= 0x8000;
    const uint32_t u = (uint32_t)b << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  static float ftz(float x) { return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x; }

  template <int t>
  static void zero() {
    std::memset(&tiles[t], 0, sizeof(Tile));
  }
  template <int t>
  static void load(const void* p, size_t stride) {
    for (int r = 0; r < 16; ++r) std::memcpy(tiles[t].row[r], static_cast<const uint8_t*>(p) + r * stride, 64);
  }
  template <int t>
  static void store(void* p, size_t stride) {
    for (int r = 0; r < 16; ++r) std::memcpy(static_cast<uint8_t*>(p) + r * stride, tiles[t].row[r], 64);
  }
  template <int c, int a, int b>
  static void dp() {
    for (int m = 0; m < 16; ++m)
      for (int k = 0; k < 16; ++k)
        for (int n = 0; n < 16; ++n) {
          float acc;
          std::memcpy(&acc, tiles[c].row[m] + 4 * n, 4);
          acc = ftz(acc + bf16_in(tiles[a].row[m] + 4 * k) * bf16_in(tiles[b].row[k] + 4 * n));
          acc = ftz(acc + bf16_in(tiles[a].row[m] + 4 * k + 2) * bf16_in(tiles[b].row[k] + 4 * n + 2));
          std::memcpy(tiles[c].row[m] + 4 * n, &acc, 4);
        }
  }

  static void begin() {}
  static void end() {}
  static void block(const uint16_t* a, const uint16_t* b, int kpad, float* s) {
    kernels::cpu::bf16x3::block_product<EmulatedTiles>(a, b, kpad, s);
  }
};

inline const kernels::cpu::bf16x3::TileKernel& emulated_tile_kernel() {
  static const kernels::cpu::bf16x3::TileKernel k{EmulatedTiles::begin, EmulatedTiles::block, EmulatedTiles::end};
  return k;
}

}  // namespace onebit::kernels::testing
