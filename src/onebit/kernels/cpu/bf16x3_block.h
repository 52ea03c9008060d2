#pragma once
// One 32 x 32 output block of the bf16x3 product on tile registers, written once against an abstract
// set of tile operations so that the very same addressing runs on AMX (bf16x3_tile.cpp) and on a scalar
// emulation of the tile instructions in the tests (which verifies it on machines without AMX).
// Tiles (palette 1, every tile 16 rows x 64 bytes): 0-3 the 2 x 2 accumulators of 16 x 16 f32;
// 4, 5: rows 0-15 / 16-31 of one A part (16 rows x 32 bf16); 6, 7: columns 0-15 / 16-31 of B (16 rows
// of K pairs x 16 columns x 2 bf16). Per K step of 32 the B tiles load once and serve all three parts.
// Only builtin types here: the AMX file instantiates this with its own tile type in an anonymous
// namespace, so nothing compiled with the AMX flags is shared with other files.
#include <cstddef>
#include <cstdint>

namespace onebit::kernels::cpu::bf16x3 {

// s[32][32] (row-major, f32) = Σ_p Σ_k A_p[r][k] · B[k][c]; a: one packed A block, b: one packed B
// panel (bf16x3.h), kpad a multiple of 32.
template <class Tiles>
void block_product(const uint16_t* a, const uint16_t* b, int kpad, float* s) {
  const size_t a_stride = (size_t)kpad * 2, b_stride = 128;
  Tiles::template zero<0>();
  Tiles::template zero<1>();
  Tiles::template zero<2>();
  Tiles::template zero<3>();
  for (int k = 0; k < kpad; k += 32) {
    const uint16_t* bk = b + (size_t)(k / 2) * 64;  // K pair k/2, 32 columns x 2
    Tiles::template load<6>(bk, b_stride);
    Tiles::template load<7>(bk + 32, b_stride);
    for (int p = 0; p < 3; ++p) {
      const uint16_t* ap = a + (size_t)p * 32 * kpad + k;
      Tiles::template load<4>(ap, a_stride);
      Tiles::template load<5>(ap + (size_t)16 * kpad, a_stride);
      Tiles::template dp<0, 4, 6>();
      Tiles::template dp<1, 4, 7>();
      Tiles::template dp<2, 5, 6>();
      Tiles::template dp<3, 5, 7>();
    }
  }
  Tiles::template store<0>(s, 128);
  Tiles::template store<1>(s + 16, 128);
  Tiles::template store<2>(s + 16 * 32, 128);
  Tiles::template store<3>(s + 16 * 32 + 16, 128);
}

}  // namespace onebit::kernels::cpu::bf16x3
