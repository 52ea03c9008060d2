// Flash attention forward, v4 (ONEBIT_CUDA_ATTENTION=v4, and `auto` where it runs): FlashAttention-3's
// structure at head_dim 64 on Hopper (sm_90a), without attention dropout. The v2 forward (mma.sync,
// cp.async issued by the computing warps, every product waited for before the softmax) is issue-bound:
// the tensor cores idle while the warps exponentiate. Here
//   - a persistent block per SM walks (query tile, head, batch row) items, the longest query tiles of
//     every head first, so the last wave is short and no block's prologue is exposed: its producer
//     warp already streams the next item's tiles while the consumers finish the last one;
//   - the producer warp issues TMA copies (4-D tensor maps over [B, T, heads, 64], rows past T read as
//     zeros) of Q (128 queries) and of 128-key K and V tiles into a three-stage ring tracked by
//     mbarriers, in the 128-byte swizzle that wgmma reads without bank conflicts;
//   - two consumer warpgroups (64 queries each) run S = Q Kᵀ as m64n128k16 products from shared memory
//     and O += P V as m64n64k16 products with P in registers and V an MN-major operand, and overlap the
//     two: the products of tile j (S_j) and of tile j - 1 (P_{j-1} V_{j-1}) are issued together, the
//     softmax of S_j runs while P_{j-1} V_{j-1} is still on the tensor cores, and O is rescaled once
//     that product is done.
// The online softmax is v2's arithmetic (online_softmax_step) on 128-key tiles: base-2, the max over raw
// scores, one FFMA and one ex2.approx per probability, P rounded to bf16 for the product; results equal
// v2's up to where the rescaling happens. With dropout, head_dim 128, unaligned operands or no sm_90a
// code on a compute capability 9.0 device, v4's forward is v2's.
//
// Resources per block: 288 threads (two consumer warpgroups, then the producer warp), 1 block per SM;
// 16 KB of Q + 3 stages x (K, V) 16 KB each = 112 KB of dynamic shared memory (+1 KB alignment slack).
#include "onebit/kernels/cuda/attention_v2.cuh"
#include "onebit/kernels/cuda/attention_v3.cuh"
#include "onebit/kernels/cuda/attention_wgmma.cuh"
#include "onebit/kernels/cuda/tma.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kHd = 64, kBM = 128, kBN = 128, kStages = 3, kConsumers = 2;
constexpr int kThreads = 128 * kConsumers + 32;
constexpr int kQBytes = kBM * kHd * 2, kWgQBytes = kQBytes / kConsumers;  // 64 rows of 128 bytes per warpgroup
constexpr int kTileBytes = kBN * kHd * 2, kStageBytes = 2 * kTileBytes;  // K then V
constexpr int kBarriers = 2 + 2 * kStages;                                // Q full/empty, each stage's full/empty
constexpr int kSmemBytes = kQBytes + kStages * kStageBytes + kBarriers * 8;
constexpr int kWarpsPerItem = 4 * kConsumers;  // empty barriers count one arrival per consumer warp

#if ONEBIT_WGMMA
#define OB_F8(i)                                                                                              \
  "+f"(d[(i)]), "+f"(d[(i) + 1]), "+f"(d[(i) + 2]), "+f"(d[(i) + 3]), "+f"(d[(i) + 4]), "+f"(d[(i) + 5]), \
      "+f"(d[(i) + 6]), "+f"(d[(i) + 7])
// d (64 x 128 f32, this thread's 64) = (accumulate ? d : 0) + A · Bᵀ for one k16 step, A (64 rows) and B
// (128 rows) K-major in shared memory.
__device__ inline void mma_ss_n128(float* d, uint64_t da, uint64_t db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, "
      "%23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "
      "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
      "%64, %65, p, 1, 1, 0, 0;\n}\n"
      : OB_F8(0), OB_F8(8), OB_F8(16), OB_F8(24), OB_F8(32), OB_F8(40), OB_F8(48), OB_F8(56)
      : "l"(da), "l"(db), "r"(accumulate));
}
#undef OB_F8
#else
__device__ inline void mma_ss_n128(float*, uint64_t, uint64_t, int) { __trap(); }
#endif

// Work item i (of B * H * query tiles): rank i / (B H) counts query tiles from the last, so every head's
// longest tile comes first.
struct Item {
  int b, h, q0, tiles;
};
__device__ inline Item item_of(int i, int B, int H, int qtiles) {
  const int bh = i % (B * H), qt = qtiles - 1 - i / (B * H);
  return Item{bh / H, bh % H, qt * kBM, qt + 1};  // kBM == kBN: query tile qt sees key tiles 0..qt
}

__device__ inline void issue_s(float (&s)[16][4], const uint8_t* q_tile, const uint8_t* k_tile) {
#pragma unroll
  for (int kk = 0; kk < kHd / 16; ++kk)
    mma_ss_n128(&s[0][0], wg::sw128_kmajor_desc(q_tile, kk), wg::sw128_kmajor_desc(k_tile, kk), kk > 0);
}
// Compiled for every architecture (the wgmma, TMA and mbarrier wrappers trap outside sm_90a code); the host
// launches it only where attention_wgmma_available().
__global__ void __launch_bounds__(kThreads, 1)
    flash_forward_tma_kernel(const __grid_constant__ CUtensorMap qmap, const __grid_constant__ CUtensorMap kmap,
                             const __grid_constant__ CUtensorMap vmap, __nv_bfloat16* __restrict__ o,
                             float* __restrict__ lse, int B, int T, int H, int KV, float scale_log2) {
  extern __shared__ uint8_t smem_raw[];
  // Swizzle atoms (and TMA's swizzled boxes) start on 1024-byte boundaries (the launch adds the slack).
  uint8_t* smem = smem_raw + ((1024 - ((uint32_t)__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
  uint8_t* sQ = smem;
  uint8_t* ring = smem + kQBytes;
  // q_full: Q of the current item landed; q_empty: every consumer warp's last S product of the item is done;
  // full: a stage's K and V landed; empty: every consumer warp is done with the stage.
  const tma::RingBarriers bars =
      tma::ring_barriers<kStages>(reinterpret_cast<uint64_t*>(ring + kStages * kStageBytes), kWarpsPerItem);
  uint64_t *q_full = bars.item_full, *q_empty = bars.item_empty, *full = bars.full, *empty = bars.empty;
  const int qtiles = (T + kBM - 1) / kBM, items = B * H * qtiles, group = H / KV;

  const int wgrp = threadIdx.x >> 7;
  if (wgrp == kConsumers) {  // the producer warp; one lane issues every copy
    if (threadIdx.x != 128 * kConsumers) return;
    int stage = 0;
    uint32_t phase = 0, q_phase = 0;
    for (int i = blockIdx.x; i < items; i += gridDim.x) {
      const Item it = item_of(i, B, H, qtiles);
      tma::mbar_wait(q_empty, q_phase ^ 1);  // the first item finds Q's buffer free
      tma::mbar_expect_tx(q_full, kQBytes);  // boxes past T count whole (zero-filled)
      tma::load_4d(sQ, &qmap, 0, it.h, it.q0, it.b, q_full);
      q_phase ^= 1;
      tma::load_pair_ring<kStages, kTileBytes>(ring, full, empty, &kmap, &vmap, it.h / group, kBN, it.b, it.tiles,
                                               stage, phase);
    }
    return;
  }

  const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const uint8_t* q_tile = sQ + wgrp * kWgQBytes;
  int stage = 0;
  uint32_t phase = 0, q_phase = 0;
  for (int i = blockIdx.x; i < items; i += gridDim.x) {
    const Item it = item_of(i, B, H, qtiles);
    const int w0 = it.q0 + wgrp * 64 + warp * 16;  // this warp's first query row
    const int qi[2] = {w0 + g, w0 + g + 8};
    float acc[8][4], s[16][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, alpha[2];
    uint32_t p[8][4];  // the previous tile's P as A fragments
    const uint64_t no_drop[2] = {0, 0};
#pragma unroll
    for (int n = 0; n < 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

    tma::mbar_wait(q_full, q_phase);
    q_phase ^= 1;
    // Key tile 0: S alone (O is still zero).
    tma::mbar_wait(&full[stage], phase);
    wg::fence();
    issue_s(s, q_tile, ring + stage * kStageBytes);
    wg::commit();
    wg::wait<0>();
    if (it.tiles == 1 && lane == 0) tma::mbar_arrive(q_empty);
    attn2::online_softmax_scores<16, false>(s, m, l, alpha, 0, w0, qi, T, scale_log2, no_drop, 0.0f, 0, t);
    wg::pack_a(p, s);
    int prev = stage;
    if (++stage == kStages) stage = 0, phase ^= 1;
    for (int j = 1; j < it.tiles; ++j) {
      tma::mbar_wait(&full[stage], phase);
      wg::fence();
      issue_s(s, q_tile, ring + stage * kStageBytes);  // S_j
      wg::commit();
      wg::mma_ab64_sw128(acc, p, ring + prev * kStageBytes + kTileBytes);  // O += P_{j-1} V_{j-1}
      wg::commit();
      wg::wait<1>();  // S_j is done (groups complete in order); P V may still run
      if (j == it.tiles - 1 && lane == 0) tma::mbar_arrive(q_empty);  // this warp reads Q no more
      attn2::online_softmax_scores<16, false>(s, m, l, alpha, j * kBN, w0, qi, T, scale_log2, no_drop, 0.0f, 0,
                                              t);
      wg::wait<0>();  // P_{j-1} V_{j-1} is done: O may be rescaled, p rewritten, the stage refilled
      if (lane == 0) tma::mbar_arrive(&empty[prev]);
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        acc[n][0] *= alpha[0];
        acc[n][1] *= alpha[0];
        acc[n][2] *= alpha[1];
        acc[n][3] *= alpha[1];
      }
      wg::pack_a(p, s);
      prev = stage;
      if (++stage == kStages) stage = 0, phase ^= 1;
    }
    wg::fence();
    wg::mma_ab64_sw128(acc, p, ring + prev * kStageBytes + kTileBytes);
    wg::commit();
    wg::wait<0>();
    if (lane == 0) tma::mbar_arrive(&empty[prev]);
    attn2::write_forward_rows<kHd>(o, lse, acc, m, l, qi, it.b, it.h, T, H, t);
  }
}

void launch(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H,
            int KV) {
  static const bool allowed = (allow_smem(flash_forward_tma_kernel, kSmemBytes + 1024), true);
  (void)allowed;
  const CUtensorMap qmap = swizzled_head_map(q, B, T, H, kBM);
  const CUtensorMap kmap = swizzled_head_map(k, B, T, KV, kBN);
  const CUtensorMap vmap = swizzled_head_map(v, B, T, KV, kBN);
  const int items = B * H * ((T + kBM - 1) / kBM);
  const float scale_log2 = attn2::kLog2e / sqrtf((float)kHd);
  flash_forward_tma_kernel<<<std::min(items, sm_count()), kThreads, kSmemBytes + 1024, stream_of(ctx)>>>(
      qmap, kmap, vmap, dev(o), lse, B, T, H, KV, scale_log2);
  check_last_launch("attention_forward (v4)");
}

}  // namespace

void attention_forward_v4(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                          int H, int KV, int hd, float p, uint64_t seed) {
  if (hd != 64 || p > 0.0f || !attention_wgmma_available())
    return attention_forward_v2(ctx, o, lse, q, k, v, B, T, H, KV, hd, p, seed);
  launch(ctx, o, lse, q, k, v, B, T, H, KV);
}

}  // namespace onebit::kernels::cuda
