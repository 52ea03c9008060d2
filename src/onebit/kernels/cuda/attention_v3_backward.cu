// Flash attention backward, v3 (head_dim 64 without dropout; other cases run v2's two passes): one
// pass over the key tiles that also produces dQ, deterministically.
//
// v2 recomputes S = QKᵀ, P and dP = dO Vᵀ twice, once for dK/dV (per key tile) and once for dQ (per
// query tile): seven tile products where FlashAttention-2 needs five. FlashAttention-2 gets dQ in
// the key-tile pass by adding each tile's dS·K to an f32 buffer with atomics, in an order that varies
// from run to run; exact resume on the GPU needs the same bits every run. Here the additions to a
// query tile's f32 rows are ordered instead (as FlashAttention-3's deterministic mode does): one
// counter per (batch, head, query tile) says whose turn it is, and the key tiles take their turns in
// a fixed order, the diagonal tile first (it writes; the others add), then the tiles to its left
// down to key tile 0, which resets the counter to zero for the next call. A key tile reaches query
// tile qt one step after the tile to its right did, so the blocks of one head move as a wave and
// rarely wait. Block x of the grid takes key tile (tiles - 1 - x): a block only ever waits for a
// block that was dispatched before it (blocks are dispatched in index order), so waiting cannot
// starve the block it waits for of a multiprocessor. dq = bf16(f32 rows) by a last, elementwise kernel.
//
// Per step of a block (64 keys, 4 warps of 16 keys; one 64-query tile of one head):
//   Sᵀ = K Qᵀ, dPᵀ = V dOᵀ, P = exp(S - lse), dSᵀ = Pᵀ ∘ (dPᵀ - D) / sqrt(hd)  (as v2)
//   dV += Pᵀ dO, dK += dSᵀ Q                                              (as v2)
//   dSᵀ (bf16, exactly the operand of dK's product) to shared memory; warp w then takes query rows
//   16w..16w+15: dQ_tile = dS K (ldmatrix.trans turns the stored dSᵀ into dS fragments), and adds
//   them to the f32 rows in its turn.
// Resources (sm_90, CUDA 13.0): 128 threads, 65,536 B dynamic shared memory (v2's 56,320 + dSᵀ 64 x 72
// bf16): 3 blocks per SM; registers bounded at 168 by the launch bounds, as v2's dK/dV kernel.
#include "onebit/kernels/cuda/attention_v2.cuh"
#include "onebit/kernels/cuda/attention_v2_tiles.cuh"

namespace onebit::kernels::cuda {
namespace {

using namespace attn2;

constexpr int kHd = 64;
using Fused = Cfg<kHd, 4>;  // 4 warps x 16 keys; 64-row query tiles
constexpr int kTile = 64;
static_assert(Fused::kRows == kTile && Fused::kStream == kTile, "v3: key and query tiles are both 64 rows");

constexpr size_t fused_smem_bytes() {
  return sizeof(__nv_bfloat16) * (size_t)(3 * kTile + 4 * kTile) * Fused::kLd + sizeof(float) * 4 * (size_t)kTile;
}

__device__ inline int load_acquire(const int* p) {
  int v;
  asm volatile("ld.acquire.gpu.global.s32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ inline void store_release(int* p, int v) {
  asm volatile("st.release.gpu.global.s32 [%0], %1;\n" ::"l"(p), "r"(v) : "memory");
}

// acc (16 query rows x 32 columns, half HALF of the 64) = dS (16 x 64 keys) · K[:, HALF*32 ..], with
// dSᵀ stored row-major by key in `dst_t` (the warp's query rows start at column q_col) and K
// row-major in `k_rows`. In halves, so the f32 accumulators live beside dK's and dV's without spills.
template <int HALF>
__device__ inline void mma_dsk(float acc[4][4], const __nv_bfloat16* dst_t, int q_col, const __nv_bfloat16* k_rows,
                               int lane) {
  constexpr int ld = Fused::kLd;
#pragma unroll
  for (int n = 0; n < 4; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk) {
    // A fragment (rows = queries, k = keys kk*16..) from the transposed store: matrix i = lane / 8
    // is (query block i & 1, key block i >> 1); .trans hands lane (g, t) elements (k 2t, 2t+1; m g).
    uint32_t a[4];
    const int i = lane >> 3;
    ldsm_x4_trans(a, dst_t + (kk * 16 + (i >> 1) * 8 + (lane & 7)) * ld + q_col + (i & 1) * 8);
    const __nv_bfloat16* rows = k_rows + (kk * 16 + (lane & 15)) * ld + (lane >> 4) * 8 + HALF * 32;
#pragma unroll
    for (int np = 0; np < 2; ++np) {
      uint32_t b[4];
      ldsm_x4_trans(b, rows + np * 16);
      attn::mma16816(acc[2 * np], a, b[0], b[1]);
      attn::mma16816(acc[2 * np + 1], a, b[2], b[3]);
    }
  }
}

// Adds (or, first in turn, writes) a warp's 16 x 32 half of a dQ tile to the f32 rows: lane (g, t)
// holds rows g and g + 8, columns n*8 + 2t, +1 of each 8-column block n.
template <int HALF>
__device__ inline void add_dq(float* head_rows, const float acc[4][4], int r0, int T, bool first, int g, int t) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int qi = r0 + g + 8 * r;
    if (qi >= T) continue;
    float* row = head_rows + (size_t)qi * kHd + HALF * 32 + 2 * t;
#pragma unroll
    for (int n = 0; n < 4; ++n) {
      float2 x = make_float2(acc[n][2 * r], acc[n][2 * r + 1]);
      if (!first) {
        const float2 old = __ldcg(reinterpret_cast<const float2*>(row + n * 8));
        x.x += old.x;
        x.y += old.y;
      }
      __stcg(reinterpret_cast<float2*>(row + n * 8), x);
    }
  }
}

// grid (key tiles, KV, B); see the file comment. dq_acc: f32 [B, H, T, 64]; turn: zeroed counters,
// one per (b, h, query tile).
__global__ void __launch_bounds__(Fused::kThreads, 3) flash_bwd_v3_kernel(
    __nv_bfloat16* dk, __nv_bfloat16* dv, float* dq_acc, int* turn, const __nv_bfloat16* dout,
    const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const float* lse, const float* D, int T,
    int H, int KV, float scale_log2, float scale) {
  constexpr int ld = Fused::kLd, BK = kTile, BQ = kTile, NT = Fused::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  auto* sK = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* sV = sK + BK * ld;
  __nv_bfloat16* sdS = sV + BK * ld;      // [BK keys][ld]: dSᵀ of the current step
  __nv_bfloat16* sQ = sdS + BK * ld;      // [2][BQ][ld]
  __nv_bfloat16* sdO = sQ + 2 * BQ * ld;  // [2][BQ][ld]
  auto* sL = reinterpret_cast<float*>(sdO + 2 * BQ * ld);  // [2][BQ] natural-log lse
  float* sD = sL + 2 * BQ;                                 // [2][BQ]
  const int tiles = gridDim.x, jt = tiles - 1 - (int)blockIdx.x, j0 = jt * BK;
  const int kh = blockIdx.y, b = blockIdx.z, group = H / KV;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const size_t q_stride = (size_t)H * kHd, kv_stride = (size_t)KV * kHd;
  const int per_head = tiles - jt, steps = group * per_head;  // query tiles jt .. tiles-1 of each head
  auto load_step = [&](int step, int stage) {
    const int h = kh * group + step / per_head, q0 = j0 + (step % per_head) * BQ;
    cp_tile<kHd, BQ, NT>(sQ + stage * BQ * ld, q + ((size_t)b * T * H + h) * kHd, q0, T, q_stride);
    cp_tile<kHd, BQ, NT>(sdO + stage * BQ * ld, dout + ((size_t)b * T * H + h) * kHd, q0, T, q_stride);
    if (threadIdx.x < BQ) {
      const int qi = q0 + threadIdx.x;
      const bool ok = qi < T;
      const size_t at = ((size_t)b * H + h) * T + (ok ? qi : 0);
      cp_async4(sL + stage * BQ + threadIdx.x, lse + at, ok);
      cp_async4(sD + stage * BQ + threadIdx.x, D + at, ok);
    }
  };
  cp_tile<kHd, BK, NT>(sK, k + ((size_t)b * T * KV + kh) * kHd, j0, T, kv_stride);
  cp_tile<kHd, BK, NT>(sV, v + ((size_t)b * T * KV + kh) * kHd, j0, T, kv_stride);
  load_step(0, 0);
  cp_async_commit();

  const int w0 = j0 + warp * 16;  // this warp's first key: rows of Sᵀ, dPᵀ, dK, dV and of sdS
  const int kj[2] = {w0 + g, w0 + g + 8};
  float accK[kHd / 8][4], accV[kHd / 8][4];
#pragma unroll
  for (int n = 0; n < kHd / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) accK[n][e] = accV[n][e] = 0.0f;

  for (int step = 0; step < steps; ++step) {
    if (step + 1 < steps) {
      load_step(step + 1, (step + 1) & 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int st = step & 1, h = kh * group + step / per_head, qt = jt + step % per_head, q0 = qt * BQ;
    const __nv_bfloat16* cQ = sQ + st * BQ * ld;
    const __nv_bfloat16* cdO = sdO + st * BQ * ld;
    const float* cL = sL + st * BQ;
    const float* cD = sD + st * BQ;
    uint32_t* my_ds = reinterpret_cast<uint32_t*>(sdS + warp * 16 * ld);
    if (q0 + BQ - 1 >= w0 && w0 < T) {  // warp-uniform: some query of the tile sees some key of the warp
      float p[8][4], dp[8][4];
      mma_abt<kHd>(p, sK + warp * 16 * ld, cQ, lane);    // Sᵀ = K Qᵀ
      mma_abt<kHd>(dp, sV + warp * 16 * ld, cdO, lane);  // dPᵀ = V dOᵀ
      const bool edge = q0 < w0 + 15 || q0 + BQ > T || w0 + 15 >= T;
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int c = n * 8 + 2 * t + (e & 1), qi = q0 + c, key = kj[e >> 1];
          const bool live = !edge || (key <= qi && qi < T && key < T);
          const float pr = live ? exp2f(p[n][e] * scale_log2 - cL[c] * kLog2e) : 0.0f;
          p[n][e] = pr;
          dp[n][e] = pr * (dp[n][e] - cD[c]) * scale;  // dSᵀ
        }
      mma_pv<kHd>(accV, p, cdO, lane);  // dV += Pᵀ dO
      mma_pv<kHd>(accK, dp, cQ, lane);  // dK += dSᵀ Q
      // dSᵀ as the bf16 pairs mma_pv just used: row (key) g / g + 8 of the warp, columns n*8 + 2t.
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        my_ds[(g * ld + n * 8 + 2 * t) / 2] = pack_bf16(dp[n][0], dp[n][1]);
        my_ds[((g + 8) * ld + n * 8 + 2 * t) / 2] = pack_bf16(dp[n][2], dp[n][3]);
      }
    } else {
#pragma unroll
      for (int n = 0; n < 8; ++n) my_ds[(g * ld + n * 8 + 2 * t) / 2] = my_ds[((g + 8) * ld + n * 8 + 2 * t) / 2] = 0u;
    }
    __syncthreads();  // sdS complete

    // This warp's 16 query rows of the tile: dQ_tile = dS K, added to the f32 rows in turn.
    const int r0 = q0 + warp * 16;
    const bool rows_in = r0 < T;
    float* head_rows = dq_acc + (((size_t)b * H + h) * T) * kHd;
    int* my_turn = turn + ((size_t)b * H + h) * tiles + qt;
    const int order = qt - jt;  // 0: the diagonal tile (writes), then one per tile to the left
    float acc[4][4];
    if (rows_in) mma_dsk<0>(acc, sdS, warp * 16, sK, lane);
    if (threadIdx.x == 0 && order > 0) {
      while (load_acquire(my_turn) != order) __nanosleep(32);
    }
    __syncthreads();  // every warp now sees the previous tiles' additions (the acquire + barrier)
    if (rows_in) {
      add_dq<0>(head_rows, acc, r0, T, order == 0, g, t);
      mma_dsk<1>(acc, sdS, warp * 16, sK, lane);
      add_dq<1>(head_rows, acc, r0, T, order == 0, g, t);
    }
    __syncthreads();  // all of this block's additions issued; stages and sdS free for the next step
    if (threadIdx.x == 0) {
      __threadfence();
      // Key tile 0 is the last of the query tile's turns: it leaves the counter at zero for the next call.
      store_release(my_turn, jt == 0 ? 0 : order + 1);
    }
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (kj[r] >= T) continue;
    const size_t off = (((size_t)b * T + kj[r]) * KV + kh) * kHd;
#pragma unroll
    for (int n = 0; n < kHd / 8; ++n) {
      *reinterpret_cast<__nv_bfloat162*>(dk + off + n * 8 + 2 * t) =
          __floats2bfloat162_rn(accK[n][2 * r], accK[n][2 * r + 1]);
      *reinterpret_cast<__nv_bfloat162*>(dv + off + n * 8 + 2 * t) =
          __floats2bfloat162_rn(accV[n][2 * r], accV[n][2 * r + 1]);
    }
  }
}

// dq[b, t, h, :] = bf16(dq_acc[b, h, t, :]): 8 values per thread and step of a grid-stride loop.
__global__ void dq_from_f32_kernel(__nv_bfloat16* dq, const float* dq_acc, int T, int H, size_t vecs) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < vecs; i += (size_t)gridDim.x * blockDim.x) {
    const size_t row = i / (kHd / 8), c = (i % (kHd / 8)) * 8;  // row of [B, H, T]
    const size_t tt = row % T, bh = row / T, h = bh % H, b = bh / H;
    const float4 a = __ldcs(reinterpret_cast<const float4*>(dq_acc + row * kHd + c));
    const float4 z = __ldcs(reinterpret_cast<const float4*>(dq_acc + row * kHd + c + 4));
    const float vals[8] = {a.x, a.y, a.z, a.w, z.x, z.y, z.z, z.w};
    store8(dq + ((b * T + tt) * H + h) * kHd + c, vals);
  }
}

}  // namespace

bool attention_backward_v3_applies(int hd, float p) { return hd == kHd && p == 0.0f; }

size_t attention_backward_v3_scratch_bytes(int B, int T, int H) { return sizeof(float) * (size_t)B * H * T * kHd; }

void attention_backward_v3(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                           const bf16* v, const float* lse, const float* D, float* dq_acc, int B, int T, int H,
                           int KV) {
  constexpr size_t bytes = fused_smem_bytes();
  static const bool allowed = (allow_smem(flash_bwd_v3_kernel, bytes), true);
  (void)allowed;
  const int tiles = (T + kTile - 1) / kTile;
  int* turn = ctx.zeroed_counters((size_t)B * H * tiles);
  const float scale = 1.0f / sqrtf((float)kHd), scale_log2 = scale * kLog2e;
  cudaStream_t st = stream_of(ctx);
  flash_bwd_v3_kernel<<<dim3(tiles, KV, B), Fused::kThreads, bytes, st>>>(
      dev(dk), dev(dv), dq_acc, turn, dev(dout), dev(q), dev(k), dev(v), lse, D, T, H, KV, scale_log2, scale);
  const size_t vecs = (size_t)B * H * T * (kHd / 8);
  dq_from_f32_kernel<<<blocks_for(vecs, 256), 256, 0, st>>>(dev(dq), dq_acc, T, H, vecs);
  check_last_launch("attention_backward (v3)");
}

}  // namespace onebit::kernels::cuda
