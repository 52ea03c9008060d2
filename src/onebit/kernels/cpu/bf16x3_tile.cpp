// The bf16x3 block on AMX-BF16 (compiled with -mamx-tile -mamx-bf16 for this file only; runs only where
// amx_bf16_usable()). Raw pointers only: see bf16x3_block.h.
#include <immintrin.h>

#include "onebit/kernels/cpu/bf16x3_block.h"
#include "onebit/kernels/cpu/amx_tile_config.h"
#include "onebit/kernels/cpu/bf16x3_gemm.h"

namespace onebit::kernels::cpu::bf16x3 {
namespace {

using TileConfig = AmxTileConfig;

// GCC's tile intrinsics paste the tile number into the instruction text, so each must be a literal:
// the tile numbers block_product uses, spelled out.
struct AmxTiles {
  template <int t>
  static void zero() {
    static_assert(t >= 0 && t <= 3);
    if constexpr (t == 0) _tile_zero(0);
    else if constexpr (t == 1) _tile_zero(1);
    else if constexpr (t == 2) _tile_zero(2);
    else _tile_zero(3);
  }
  template <int t>
  static void load(const void* p, size_t stride) {
    static_assert(t >= 4 && t <= 7);
    if constexpr (t == 4) _tile_loadd(4, p, stride);
    else if constexpr (t == 5) _tile_loadd(5, p, stride);
    else if constexpr (t == 6) _tile_loadd(6, p, stride);
    else _tile_loadd(7, p, stride);
  }
  template <int t>
  static void store(void* p, size_t stride) {
    static_assert(t >= 0 && t <= 3);
    if constexpr (t == 0) _tile_stored(0, p, stride);
    else if constexpr (t == 1) _tile_stored(1, p, stride);
    else if constexpr (t == 2) _tile_stored(2, p, stride);
    else _tile_stored(3, p, stride);
  }
  template <int c, int a, int b>
  static void dp() {
    static_assert((c == 0 && a == 4 && b == 6) || (c == 1 && a == 4 && b == 7) || (c == 2 && a == 5 && b == 6) ||
                  (c == 3 && a == 5 && b == 7));
    if constexpr (c == 0) _tile_dpbf16ps(0, 4, 6);
    else if constexpr (c == 1) _tile_dpbf16ps(1, 4, 7);
    else if constexpr (c == 2) _tile_dpbf16ps(2, 5, 6);
    else _tile_dpbf16ps(3, 5, 7);
  }
};

// The tile configuration is per thread: each pool task sets it before its first block.
void amx_begin() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
}
void amx_block(const uint16_t* a, const uint16_t* b, int kpad, float* s) { block_product<AmxTiles>(a, b, kpad, s); }
void amx_end() { _tile_release(); }

}  // namespace

const TileKernel& amx_tile_kernel() {
  static const TileKernel k{amx_begin, amx_block, amx_end};
  return k;
}

}  // namespace onebit::kernels::cpu::bf16x3
