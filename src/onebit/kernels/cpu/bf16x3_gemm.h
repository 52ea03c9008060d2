#pragma once
// The Hard-phase backward of a ternary linear on AMX-BF16, to f32 rounding level (bf16x3.h):
//   dx[N,in]   = beta·dx + g · dy[N,out] · t[out,in]          (W_eff = g·t, t in {-1,0,+1})
//   dW[out,in] += Σ_i (dy[i,·]·f_i)ᵀ q[i,·]                    (xq[i,·] = q[i,·]·f_i, act_codes.h)
// In both the f32 operand (dy, or dy with the row factor f_i folded in: one extra f32 rounding per
// element) is split into three bf16 parts and the other operand is exact in bf16 (±1, or int8 codes).
// Outputs are computed block by block (32 x 32, bf16x3_block.h), each by exactly one pool task over the
// whole K in a fixed order, so results do not depend on the thread count.
// The tile work goes through a TileKernel: AMX in production, a scalar emulation of the tile
// instructions in the tests, so packing, blocking and edges are verified on machines without AMX.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace onebit::kernels::cpu {

namespace bf16x3 {
// begin: configure this thread's tiles; block: bf16x3_block.h's block_product; end: release the tiles.
struct TileKernel {
  void (*begin)();
  void (*block)(const uint16_t* a, const uint16_t* b, int kpad, float* s);
  void (*end)();
};
// The AMX-BF16 one (bf16x3_tile.cpp). Call only where amx_bf16_usable().
const TileKernel& amx_tile_kernel();
}  // namespace bf16x3

// amx_bf16_usable() (cpu_features.h; ONEBIT_AMX=off turns it off) and AVX-512F/BW for the packers.
bool bf16x3_available();
// Whether training uses it (CpuOps::pack_ternary asks at every pack): bf16x3_available() and
// ONEBIT_AMX_BACKWARD=1. Opt-in until the tile path has run on AMX hardware: its packing, blocking and
// numerics are tested on an emulation of the tile instructions, the instructions themselves not yet.
bool bf16x3_backward_enabled();

// The ternary codes of W_eff[out,in] as dx's B operand (K = out, columns = in), packed once per optimizer
// step beside the forward's TernaryPack.
struct Bf16x3Weights {
  int out = 0, in = 0, kpad = 0;
  float scale = 1.0f;  // g
  std::vector<uint16_t> buf;
  size_t offset = 0;  // 64-byte aligned start in buf
  const uint16_t* data() const { return buf.data() + offset; }
};
// w_eff = g·t (weight_quantize's Hard ternary output); the code is its sign. Needs bf16x3_available().
void bf16x3_pack_weights(Bf16x3Weights& w, const float* w_eff, int out, int in, float g);

// dx[N, w.in] = beta·dx + g·dy[N, w.out]·t (beta 0: dx is not read). Needs bf16x3_available().
void bf16x3_backward_dx(float* dx, float beta, const float* dy, int N, const Bf16x3Weights& w,
                        const bf16x3::TileKernel& k = bf16x3::amx_tile_kernel());
// dw[out, in] += dyᵀ[out, N] · xq[N, in], xq rows act_quant_int8 outputs (codes and factors recovered as
// ternary_gemm does). Needs bf16x3_available().
void bf16x3_backward_dw(float* dw, const float* dy, const float* xq, int N, int out, int in,
                        const bf16x3::TileKernel& k = bf16x3::amx_tile_kernel());

// The vectorised split the packers use, on n values (tests hold it to bf16x3::split). Needs AVX-512F.
void bf16x3_split(const float* a, size_t n, uint16_t* h, uint16_t* m, uint16_t* l);

}  // namespace onebit::kernels::cpu
