#pragma once
// LDTILECFG's 64-byte operand (palette 1): bytes per row and rows of each of the 8 tiles. Shared by the
// AMX kernels of training (bf16x3_tile.cpp) and inference (infer/kernels/gemm_amx.cpp).
#include <cstdint>

namespace onebit::kernels::cpu {

struct alignas(64) AmxTileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

}  // namespace onebit::kernels::cpu
