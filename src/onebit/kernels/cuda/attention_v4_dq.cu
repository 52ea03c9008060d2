// The dQ pass of the v4 flash-attention backward without dropout (head_dim 64, Hopper, sm_90a): v2's pass
// (attention_v2_backward.cu: per query tile, the key tiles its rows see; S and dP recomputed, dQ = dS K;
// deterministic, no atomics) in the v4 forward's structure (attention_v4_forward.cu):
//   - a persistent block per SM walks (128-query tile, head, batch row) items, every head's last (longest)
//     query tile first;
//   - a producer warp issues TMA copies of each item's Q and dO (128 queries, one buffer: the next item's
//     are loaded once both warpgroups have issued their last score products) and of 64-key K and V tiles
//     into a four-stage ring, in the 128-byte swizzle;
//   - two consumer warpgroups (64 queries each) run S = Q Kᵀ and dP = dO Vᵀ (m64n64k16, shared-memory
//     operands), then dQ += dS K with dS in registers and K read as an MN-major operand of the same tile;
//     a key tile's S and dP are issued together with the previous tile's dQ product, and its dS is
//     computed while that runs. A warpgroup skips key tiles after all its rows (the diagonal tile's upper
//     half for the first warpgroup), releasing their stages.
// The per-element arithmetic is dq_probs's (attention_v2_tiles.cuh), v2's own, so the results equal v2's up
// to f32 summation order.
//
// Resources per block: 288 threads (two consumer warpgroups, then the producer warp), 1 block per SM;
// Q, dO 16 KB each + 4 stages x (K, V) 8 KB each = 96 KB of dynamic shared memory (+1 KB alignment slack).
#include "onebit/kernels/cuda/attention_v2_tiles.cuh"
#include "onebit/kernels/cuda/attention_v3.cuh"
#include "onebit/kernels/cuda/attention_wgmma.cuh"
#include "onebit/kernels/cuda/tma.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kHd = 64, kBM = 128, kBN = 64, kStages = 4, kConsumers = 2;
constexpr int kThreads = 128 * kConsumers + 32;
constexpr int kRowsBytes = kBM * kHd * 2, kWgRowsBytes = kRowsBytes / kConsumers;  // Q or dO: 16 KB, 8 KB a warpgroup
constexpr int kTileBytes = kBN * kHd * 2, kStageBytes = 2 * kTileBytes;          // K then V, 8 KB each
constexpr int kBarriers = 2 + 2 * kStages;
constexpr int kSmemBytes = 2 * kRowsBytes + kStages * kStageBytes + kBarriers * 8;
constexpr int kConsumerWarps = 4 * kConsumers;  // empty barriers count one arrival per consumer warp

struct Item {
  int b, h, q0, tiles;
};
// Item i (of B * H * query tiles): rank i / (B H) counts query tiles from the last, longest first.
__device__ inline Item item_of(int i, int B, int H, int T, int qtiles) {
  const int bh = i % (B * H), q0 = (qtiles - 1 - i / (B * H)) * kBM;
  return Item{bh / H, bh % H, q0, min(T - 1, q0 + kBM - 1) / kBN + 1};
}

// Compiled for every architecture (the wgmma, TMA and mbarrier wrappers trap outside sm_90a code); the host
// launches it only where attention_dkdv_tma_runs() (the same conditions).
__global__ void __launch_bounds__(kThreads, 1)
    flash_dq_tma_kernel(const __grid_constant__ CUtensorMap qmap, const __grid_constant__ CUtensorMap omap,
                        const __grid_constant__ CUtensorMap kmap, const __grid_constant__ CUtensorMap vmap,
                        __nv_bfloat16* __restrict__ dq, const float* __restrict__ lse, const float* __restrict__ D,
                        int B, int T, int H, int KV, float scale_log2, float scale) {
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = smem_raw + ((1024 - ((uint32_t)__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
  uint8_t* sQ = smem;
  uint8_t* sdO = smem + kRowsBytes;
  uint8_t* ring = smem + 2 * kRowsBytes;  // [stage][K, V]
  // q_full: Q and dO of the current item landed; q_empty: every consumer warp's last score products of the item
  // are done; full / empty: a stage's K and V.
  const tma::RingBarriers bars =
      tma::ring_barriers<kStages>(reinterpret_cast<uint64_t*>(ring + kStages * kStageBytes), kConsumerWarps);
  uint64_t *q_full = bars.item_full, *q_empty = bars.item_empty, *full = bars.full, *empty = bars.empty;
  const int qtiles = (T + kBM - 1) / kBM, items = B * H * qtiles, group = H / KV;

  // Warp-uniform to the compiler too (a shuffle from lane 0, as CUTLASS does): derived from threadIdx alone it made
  // every branch on this warpgroup's rows look divergent, and ptxas serialised the wgmma products behind them (C7520).
  const int wgrp = __shfl_sync(0xffffffffu, (int)(threadIdx.x >> 7), 0);
  if (wgrp == kConsumers) {  // the producer warp; one lane issues every copy
    if (threadIdx.x != 128 * kConsumers) return;
    int stage = 0;
    uint32_t phase = 0, q_phase = 0;
    for (int i = blockIdx.x; i < items; i += gridDim.x) {
      const Item it = item_of(i, B, H, T, qtiles);
      tma::mbar_wait(q_empty, q_phase ^ 1);  // the first item finds the buffers free
      tma::mbar_expect_tx(q_full, 2 * kRowsBytes);  // boxes past T count whole (zero-filled)
      tma::load_4d(sQ, &qmap, 0, it.h, it.q0, it.b, q_full);
      tma::load_4d(sdO, &omap, 0, it.h, it.q0, it.b, q_full);
      q_phase ^= 1;
      tma::load_pair_ring<kStages, kTileBytes>(ring, full, empty, &kmap, &vmap, it.h / group, kBN, it.b, it.tiles,
                                               stage, phase);
    }
    return;
  }

  const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const uint8_t* q_rows = sQ + wgrp * kWgRowsBytes;
  const uint8_t* o_rows = sdO + wgrp * kWgRowsBytes;
  const uint64_t no_drop[2] = {0, 0};
  int stage = 0;
  uint32_t phase = 0, q_phase = 0;
  for (int i = blockIdx.x; i < items; i += gridDim.x) {
    const Item it = item_of(i, B, H, T, qtiles);
    const int row0 = it.q0 + wgrp * 64, w0 = row0 + warp * 16;  // this warpgroup's and this warp's first row
    const int qi[2] = {w0 + g, w0 + g + 8};
    // The last key tile this warpgroup's rows see (-1: its rows are all past T, nothing to compute).
    const int last_live = row0 < T ? min(it.tiles - 1, (row0 + 63) / kBN) : -1;
    float L2[2], Ds[2];  // this lane's two rows: lse in base 2, D times the scale
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const size_t at = ((size_t)it.b * H + it.h) * T + qi[r];
      L2[r] = qi[r] < T ? lse[at] * attn2::kLog2e : 0.0f;
      Ds[r] = qi[r] < T ? D[at] * scale : 0.0f;
    }
    float acc[8][4], s[8][4], ds[8][4];
    uint32_t dsa[4][4];  // the previous live tile's dS as A fragments
#pragma unroll
    for (int n = 0; n < 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
    tma::mbar_wait(q_full, q_phase);
    q_phase ^= 1;
    if (last_live < 0 && lane == 0) tma::mbar_arrive(q_empty);
    bool pending = false;  // dsa holds a tile whose dQ product is not issued yet
    int prev = 0;          // ... and its stage
    for (int j = 0; j < it.tiles; ++j) {
      tma::mbar_wait(&full[stage], phase);
      const uint8_t* st = ring + stage * kStageBytes;
      if (j > last_live) {  // warpgroup-uniform: every key of the tile follows every row (or no row is live)
        if (lane == 0) tma::mbar_arrive(&empty[stage]);
        if (++stage == kStages) stage = 0, phase ^= 1;
        continue;
      }
      wg::fence();
      wg::mma_abt64_sw128(s, q_rows, st);                // S = Q Kᵀ
      wg::mma_abt64_sw128(ds, o_rows, st + kTileBytes);  // dP = dO Vᵀ
      wg::commit();
      if (pending) {
        wg::mma_ab64_sw128(acc, dsa, ring + prev * kStageBytes);  // dQ += dS K (the previous tile)
        wg::commit();
        wg::wait<1>();  // S and dP are done; the previous tile's product may still run
      } else {
        wg::wait<0>();
      }
      if (j == last_live && lane == 0) tma::mbar_arrive(q_empty);  // this warp reads Q and dO no more
      attn2::dq_probs<false>(s, ds, j * kBN, w0, qi, T, L2, Ds, scale_log2, scale, no_drop, 0.0f, 0, t);
      if (pending) {
        wg::wait<0>();  // the previous tile's product is done: its stage is free, dsa may be rewritten
        if (lane == 0) tma::mbar_arrive(&empty[prev]);
      }
      wg::pack_a(dsa, ds);
      pending = true;
      prev = stage;
      if (++stage == kStages) stage = 0, phase ^= 1;
    }
    if (pending) {
      wg::fence();
      wg::mma_ab64_sw128(acc, dsa, ring + prev * kStageBytes);
      wg::commit();
      wg::wait<0>();
      if (lane == 0) tma::mbar_arrive(&empty[prev]);
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      if (qi[r] >= T) continue;
      __nv_bfloat16* row = dq + (((size_t)it.b * T + qi[r]) * H + it.h) * kHd;
#pragma unroll
      for (int n = 0; n < 8; ++n)
        *reinterpret_cast<__nv_bfloat162*>(row + n * 8 + 2 * t) =
            __floats2bfloat162_rn(acc[n][2 * r], acc[n][2 * r + 1]);
    }
  }
}

}  // namespace

void attention_dq_tma(cudaStream_t stream, bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                      const float* lse, const float* D, int B, int T, int H, int KV) {
  static const bool allowed = (allow_smem(flash_dq_tma_kernel, kSmemBytes + 1024), true);
  (void)allowed;
  const CUtensorMap qmap = swizzled_head_map(q, B, T, H, kBM), omap = swizzled_head_map(dout, B, T, H, kBM);
  const CUtensorMap kmap = swizzled_head_map(k, B, T, KV, kBN), vmap = swizzled_head_map(v, B, T, KV, kBN);
  const int items = B * H * ((T + kBM - 1) / kBM);
  const float scale = 1.0f / sqrtf((float)kHd), scale_log2 = scale * attn2::kLog2e;
  flash_dq_tma_kernel<<<std::min(items, sm_count()), kThreads, kSmemBytes + 1024, stream>>>(
      qmap, omap, kmap, vmap, dev(dq), lse, D, B, T, H, KV, scale_log2, scale);
  check_last_launch("attention_backward (v4 dQ)");
}

}  // namespace onebit::kernels::cuda
