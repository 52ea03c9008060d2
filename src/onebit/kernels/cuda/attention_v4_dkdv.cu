// The dK/dV pass of the v4 flash-attention backward without dropout (head_dim 64, Hopper, sm_90a):
// v2's pass (attention_v2_dkdv.cuh: per key tile, every query tile of every head of its GQA group at or
// after it; S and dP recomputed; deterministic, no atomics) in the forward's v4 structure
// (attention_v4_forward.cu):
//   - a persistent block per SM walks (128-key tile, kv head, batch row) items, the longest key tiles (the
//     first ones: the most queries follow them) of every head first;
//   - a producer warpgroup (one thread of it) issues TMA copies: each item's K and V (128 keys; double-
//     buffered, so the next item's arrive while this one finishes) and, into a four-stage ring, 64-query
//     tiles of Q and dO (128-byte swizzle) with their lse and D (64 f32 each, from [B, H, T] rows: T % 4 == 0);
//   - two consumer warpgroups (64 keys each) run Sᵀ = K Qᵀ and dPᵀ = V dOᵀ (m64n64k16, both operands in
//     shared memory), then dV += Pᵀ dO and dK += dSᵀ Q with Pᵀ and dSᵀ in registers and Q, dO read as
//     MN-major operands of the same tiles; a query tile's Sᵀ and dPᵀ are issued together with the previous
//     tile's dV and dK products, and its probabilities are computed while those run.
// The per-element arithmetic is dkdv_probs's (P = ex2(S scale_log2 - lse log2e), dSᵀ = P (dP scale - D
// scale), the mask as a select on tiles that cross the diagonal or T), so the results equal v2's up to
// f32 summation order. The dQ pass stays v2's (attention_v2_backward.cu), on the context's second stream.
//
// Resources per block: 384 threads (two consumer warpgroups, then the producer warpgroup), 1 block per SM;
// 2 x (K, V) 16 KB + 4 stages x (Q, dO 8 KB + lse, D 256 B, padded to 17 KB) = 132 KB of dynamic shared
// memory (+1 KB alignment slack).
#include "onebit/kernels/cuda/attention_v2_dkdv.cuh"
#include "onebit/kernels/cuda/attention_v3.cuh"
#include "onebit/kernels/cuda/attention_wgmma.cuh"
#include "onebit/kernels/cuda/tma.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kHd = 64, kBK = 128, kBQ = 64, kStages = 4, kConsumers = 2;
constexpr int kThreads = 128 * (kConsumers + 1);  // the producer is a whole warpgroup, for setmaxnreg
constexpr int kKvTileBytes = kBK * kHd * 2, kKvBytes = 2 * kKvTileBytes;  // K then V, 16 KB each
constexpr int kQTileBytes = kBQ * kHd * 2;                                // Q, dO: 8 KB each
constexpr int kStatBytes = kBQ * 4;                                       // lse, D: 256 B each
constexpr int kLoadBytes = 2 * kQTileBytes + 2 * kStatBytes;              // what a stage's copies bring
constexpr int kStageBytes = (kLoadBytes + 1023) / 1024 * 1024;            // swizzled tiles: 1 KB aligned
constexpr int kBarriers = 4 + 2 * kStages;  // K/V full and empty per buffer, each stage's full and empty
constexpr int kSmemBytes = 2 * kKvBytes + kStages * kStageBytes + kBarriers * 8;
constexpr int kConsumerWarps = 4 * kConsumers;  // empty barriers count one arrival per consumer warp
// 12 warps per SM start at 168 registers each (3 warps per SM sub-partition of 16K registers); the producer
// needs few, and the consumers' live state (dK, dV, Sᵀ, dPᵀ accumulators and the previous tile's Pᵀ, dSᵀ
// fragments: 160 registers) spilled at 168: 128 x 40 + 256 x 232 = 64,512 of the 65,536.
constexpr int kProducerRegisters = 40, kConsumerRegisters = 232;

struct Item {
  int b, kh, j0;
};
// Item i (of B * KV * key tiles): rank i / (B KV) is the key tile, so every head's longest comes first.
__device__ inline Item item_of(int i, int B, int KV) {
  const int bk = i % (B * KV);
  return Item{bk / KV, bk % KV, i / (B * KV) * kBK};
}

// Compiled for every architecture (the wgmma, TMA and mbarrier wrappers trap outside sm_90a code); the host
// launches it only where attention_dkdv_tma_runs().
__global__ void __launch_bounds__(kThreads, 1)
    flash_dkdv_tma_kernel(const __grid_constant__ CUtensorMap qmap, const __grid_constant__ CUtensorMap omap,
                          const __grid_constant__ CUtensorMap kmap, const __grid_constant__ CUtensorMap vmap,
                          const __grid_constant__ CUtensorMap lmap, const __grid_constant__ CUtensorMap dmap,
                          __nv_bfloat16* __restrict__ dk, __nv_bfloat16* __restrict__ dv, int B, int T, int H, int KV,
                          float scale_log2, float scale, int ld_dv) {
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = smem_raw + ((1024 - ((uint32_t)__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
  uint8_t* kv = smem;                  // [2][K, V]
  uint8_t* ring = smem + 2 * kKvBytes;  // [stage][Q, dO, lse, D]
  uint64_t* bars = reinterpret_cast<uint64_t*>(ring + kStages * kStageBytes);
  uint64_t* kv_full = bars;         // [2]
  uint64_t* kv_empty = bars + 2;    // [2]
  uint64_t* full = bars + 4;        // [kStages]
  uint64_t* empty = full + kStages;  // [kStages]
  const int ktiles = (T + kBK - 1) / kBK, items = B * KV * ktiles, group = H / KV;
  if (threadIdx.x == 0) {
    for (int s = 0; s < 2; ++s) tma::mbar_init(&kv_full[s], 1), tma::mbar_init(&kv_empty[s], kConsumerWarps);
    for (int s = 0; s < kStages; ++s) tma::mbar_init(&full[s], 1), tma::mbar_init(&empty[s], kConsumerWarps);
    tma::fence_barrier_init();
  }
  __syncthreads();

  // Warp-uniform to the compiler too (a shuffle from lane 0, as CUTLASS does): derived from threadIdx alone it made
  // every branch on this warpgroup's rows look divergent, and ptxas serialised the wgmma products behind them (C7520).
  const int wgrp = __shfl_sync(0xffffffffu, (int)(threadIdx.x >> 7), 0);
  if (wgrp == kConsumers) {  // the producer warpgroup: it gives its registers to the consumers; one lane copies
    wg::set_max_registers<kProducerRegisters, false>();
    if (threadIdx.x != 128 * kConsumers) return;
    int stage = 0, n = 0;  // n: items started (their K/V buffer is n & 1)
    uint32_t phase = 0;
    for (int i = blockIdx.x; i < items; i += gridDim.x, ++n) {
      const Item it = item_of(i, B, KV);
      const int buf = n & 1;
      tma::mbar_wait(&kv_empty[buf], ((n >> 1) & 1) ^ 1);  // the first use of each buffer finds it free
      tma::mbar_expect_tx(&kv_full[buf], kKvBytes);
      tma::load_4d(kv + buf * kKvBytes, &kmap, 0, it.kh, it.j0, it.b, &kv_full[buf]);
      tma::load_4d(kv + buf * kKvBytes + kKvTileBytes, &vmap, 0, it.kh, it.j0, it.b, &kv_full[buf]);
      for (int hh = 0; hh < group; ++hh) {
        const int h = it.kh * group + hh, row = it.b * H + h;
        for (int q0 = it.j0; q0 < T; q0 += kBQ) {
          tma::mbar_wait(&empty[stage], phase ^ 1);
          uint8_t* st = ring + stage * kStageBytes;
          tma::mbar_expect_tx(&full[stage], kLoadBytes);  // boxes past T count whole (zero-filled)
          tma::load_4d(st, &qmap, 0, h, q0, it.b, &full[stage]);
          tma::load_4d(st + kQTileBytes, &omap, 0, h, q0, it.b, &full[stage]);
          tma::load_2d(st + 2 * kQTileBytes, &lmap, q0, row, &full[stage]);
          tma::load_2d(st + 2 * kQTileBytes + kStatBytes, &dmap, q0, row, &full[stage]);
          if (++stage == kStages) stage = 0, phase ^= 1;
        }
      }
    }
    return;
  }

  wg::set_max_registers<kConsumerRegisters, true>();
  const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  int stage = 0, n = 0;
  uint32_t phase = 0;
  for (int i = blockIdx.x; i < items; i += gridDim.x, ++n) {
    const Item it = item_of(i, B, KV);
    const int buf = n & 1;
    const int key0 = it.j0 + wgrp * 64, w0 = key0 + warp * 16;  // this warpgroup's and this warp's first key
    const int kj[2] = {w0 + g, w0 + g + 8};
    const uint8_t* k_tile = kv + buf * kKvBytes + wgrp * (kKvTileBytes / 2);
    const uint8_t* v_tile = kv + buf * kKvBytes + kKvTileBytes + wgrp * (kKvTileBytes / 2);
    float accK[8][4], accV[8][4], s[8][4], dp[8][4];
    uint32_t pa[4][4], dsa[4][4];  // the previous live tile's Pᵀ and dSᵀ as A fragments
#pragma unroll
    for (int c = 0; c < 8; ++c)
#pragma unroll
      for (int e = 0; e < 4; ++e) accK[c][e] = accV[c][e] = 0.0f;
    tma::mbar_wait(&kv_full[buf], (n >> 1) & 1);
    bool pending = false;  // pa/dsa hold a tile whose dV and dK products are not issued yet
    int prev = 0;          // ... and its stage
    for (int hh = 0; hh < group; ++hh) {
      for (int q0 = it.j0; q0 < T; q0 += kBQ) {
        tma::mbar_wait(&full[stage], phase);
        const uint8_t* st = ring + stage * kStageBytes;
        // Warpgroup-uniform: the tile has a query at or after some key of this warpgroup, which has a key
        // before T (else every product is masked to zero: skip, releasing the stage).
        if (q0 + kBQ - 1 < key0 || key0 >= T) {
          if (lane == 0) tma::mbar_arrive(&empty[stage]);
          if (++stage == kStages) stage = 0, phase ^= 1;
          continue;
        }
        wg::fence();
        wg::mma_abt64_sw128(s, k_tile, st);                // Sᵀ = K Qᵀ
        wg::mma_abt64_sw128(dp, v_tile, st + kQTileBytes);  // dPᵀ = V dOᵀ
        wg::commit();
        if (pending) {
          const uint8_t* pst = ring + prev * kStageBytes;
          wg::mma_ab64_sw128(accV, pa, pst + kQTileBytes);  // dV += Pᵀ dO (the previous tile)
          wg::mma_ab64_sw128(accK, dsa, pst);               // dK += dSᵀ Q
          wg::commit();
          wg::wait<1>();  // Sᵀ and dPᵀ are done; the previous tile's products may still run
        } else {
          wg::wait<0>();
        }
        const float* cL = reinterpret_cast<const float*>(st + 2 * kQTileBytes);
        dkdv_probs<false>(s, dp, cL, cL + kBQ, q0, w0, kj, T, 0, scale_log2, scale, 0.0f, 0, t);
        if (pending) {
          wg::wait<0>();  // the previous tile's products are done: its stage is free, pa/dsa may be rewritten
          if (lane == 0) tma::mbar_arrive(&empty[prev]);
        }
        wg::pack_a(pa, s);
        wg::pack_a(dsa, dp);
        pending = true;
        prev = stage;
        if (++stage == kStages) stage = 0, phase ^= 1;
      }
    }
    if (pending) {
      const uint8_t* pst = ring + prev * kStageBytes;
      wg::fence();
      wg::mma_ab64_sw128(accV, pa, pst + kQTileBytes);
      wg::mma_ab64_sw128(accK, dsa, pst);
      wg::commit();
      wg::wait<0>();
      if (lane == 0) tma::mbar_arrive(&empty[prev]);
    }
    if (lane == 0) tma::mbar_arrive(&kv_empty[buf]);
    write_dkdv_rows<kHd>(dk, dv, accK, accV, kj, it.b, it.kh, T, KV, t, ld_dv);
  }
}

}  // namespace

bool attention_dkdv_tma_runs(int hd, float p, int T, const float* lse) {
  return hd == 64 && p == 0.0f && T % 4 == 0 && aligned16(lse) && attention_wgmma_available();
}

void attention_dkdv_tma(cudaStream_t stream, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                        const bf16* v, const float* lse, const float* D, int B, int T, int H, int KV, int ld_dv) {
  static const bool allowed = (allow_smem(flash_dkdv_tma_kernel, kSmemBytes + 1024), true);
  (void)allowed;
  OB_CHECK(aligned16(lse) && aligned16(D) && T % 4 == 0, "attention_backward (v4): lse / D rows not 16-byte aligned");
  const CUtensorMap qmap = swizzled_head_map(q, B, T, H, kBQ), omap = swizzled_head_map(dout, B, T, H, kBQ);
  const CUtensorMap kmap = swizzled_head_map(k, B, T, KV, kBK), vmap = swizzled_head_map(v, B, T, KV, kBK);
  const uint64_t rows = (uint64_t)B * H, row_bytes = (uint64_t)T * 4;
  const CUtensorMap lmap = plain_tile_map(lse, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, rows, T, row_bytes, 1, kBQ);
  const CUtensorMap dmap = plain_tile_map(D, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, rows, T, row_bytes, 1, kBQ);
  const int items = B * KV * ((T + kBK - 1) / kBK);
  const float scale = 1.0f / sqrtf((float)kHd), scale_log2 = scale * attn2::kLog2e;
  flash_dkdv_tma_kernel<<<std::min(items, sm_count()), kThreads, kSmemBytes + 1024, stream>>>(
      qmap, omap, kmap, vmap, lmap, dmap, dev(dk), dev(dv), B, T, H, KV, scale_log2, scale, ld_dv);
  check_last_launch("attention_backward (v4 dK/dV)");
}

}  // namespace onebit::kernels::cuda
