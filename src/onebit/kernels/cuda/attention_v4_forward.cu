// Flash attention forward, v4 (ONEBIT_CUDA_ATTENTION=v4): v2's schedule (128 queries per block, 64-key
// tiles double-buffered with cp.async, longest query tiles first) with the two products per key tile
// on Hopper's warpgroup MMA (attention_wgmma.cuh) at head_dim 64: the block's two warpgroups each own
// 64 queries; S = Q Kᵀ reads Q and K from shared memory, O += P V takes P from registers and V from
// shared memory, each operand read once per warpgroup (v2: once per warp through ldmatrix). The online
// softmax is v2's code (online_softmax_step), so numerics are v2's. Where wgmma is unavailable (not an
// sm_90a build on a compute capability 9.0 device) or head_dim is 128, v4's forward is v2's.
//
// Resources per block: 8 warps, 49,152 B of dynamic shared memory (Q 128 x 64 + 2 stages x (K, V)
// 64 x 64, bf16 core-matrix tiles) -> 2 blocks per SM at up to 128 registers.
#include "onebit/kernels/cuda/attention_v2.cuh"
#include "onebit/kernels/cuda/attention_v3.cuh"
#include "onebit/kernels/cuda/attention_wgmma.cuh"

namespace onebit::kernels::cuda {
namespace {

using namespace attn2;

constexpr int kFwdTile = 64 * 64;
constexpr size_t kWgFwdSmem = sizeof(__nv_bfloat16) * 6 * kFwdTile;

template <bool kDrop>
__global__ void __launch_bounds__(256, kDrop ? 1 : 2) flash_forward_wgmma_kernel(
    __nv_bfloat16* o, float* lse, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int T, int H,
    int KV, float scale_log2, float p_drop, uint64_t seed) {
#if ONEBIT_WGMMA
  constexpr int HD = 64, BM = 128, BN = 64, NT = 256;
  extern __shared__ __align__(128) unsigned char smem[];
  auto* sQ = reinterpret_cast<__nv_bfloat16*>(smem);  // 128 x 64: warpgroup w's rows at w * kFwdTile
  __nv_bfloat16* sK = sQ + 2 * kFwdTile;                // [2][64 x 64]
  __nv_bfloat16* sV = sK + 2 * kFwdTile;                // [2][64 x 64]
  const int q0 = (gridDim.x - 1 - blockIdx.x) * BM, h = blockIdx.y, b = blockIdx.z, kh = h / (H / KV);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const size_t q_stride = (size_t)H * HD, kv_stride = (size_t)KV * HD;
  const __nv_bfloat16* kb = k + ((size_t)b * T * KV + kh) * HD;
  const __nv_bfloat16* vb = v + ((size_t)b * T * KV + kh) * HD;
  const int last = min(T - 1, q0 + BM - 1);
  const int tiles = last / BN + 1;
  wg::cp_tile_core<BM, NT>(sQ, q + ((size_t)b * T * H + h) * HD, q0, T, q_stride);
  wg::cp_tile_core<BN, NT>(sK, kb, 0, T, kv_stride);
  wg::cp_tile_core<BN, NT>(sV, vb, 0, T, kv_stride);
  cp_async_commit();

  const int wgi = warp >> 2, wg0 = q0 + wgi * 64;  // this warpgroup's first query row
  const int w0 = q0 + warp * 16;
  const int qi[2] = {w0 + g, w0 + g + 8};
  const uint64_t drop_row[2] = {(((uint64_t)b * H + h) * T + qi[0]) * T, (((uint64_t)b * H + h) * T + qi[1]) * T};
  float acc[8][4];
#pragma unroll
  for (int n = 0; n < 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int j = 0; j < tiles; ++j) {
    double_buffer_step(j, tiles, [&](int jn, int s1) {
      wg::cp_tile_core<BN, NT>(sK + s1 * kFwdTile, kb, jn * BN, T, kv_stride);
      wg::cp_tile_core<BN, NT>(sV + s1 * kFwdTile, vb, jn * BN, T, kv_stride);
    });
    wg::fence_async_smem();
    __syncthreads();
    const int j0 = j * BN;
    if (j0 <= wg0 + 63 && wg0 < T) {  // warpgroup-uniform: some row of the warpgroup sees some key
      float s[8][4];
      wg::fence();
      wg::mma_abt64(&s[0][0], sQ + wgi * kFwdTile, sK + (j & 1) * kFwdTile);  // S = Q Kᵀ
      wg::commit();
      wg::wait_all();
      online_softmax_step<HD, kDrop>(s, acc, m, l, j0, w0, qi, T, scale_log2, drop_row, p_drop, seed, t);
      wg::fence();
      wg::mma_pv64(&acc[0][0], s, sV + (j & 1) * kFwdTile);  // O += P V
      wg::commit();
      wg::wait_all();
    }
    __syncthreads();  // every warp is done with stage j & 1 before iteration j+1 refills it
  }
  write_forward_rows<HD>(o, lse, acc, m, l, qi, b, h, T, H, t);
#else
  __trap();
#endif
}

template <bool kDrop>
void launch(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H, int KV,
            float p, uint64_t seed) {
  static const bool allowed = (allow_smem(flash_forward_wgmma_kernel<kDrop>, kWgFwdSmem), true);
  (void)allowed;
  const float scale_log2 = kLog2e / sqrtf(64.0f);
  flash_forward_wgmma_kernel<kDrop><<<dim3((T + 127) / 128, H, B), 256, kWgFwdSmem, stream_of(ctx)>>>(
        dev(o), lse, dev(q), dev(k), dev(v), T, H, KV, scale_log2, p, seed);
  check_last_launch("attention_forward (v4)");
}

}  // namespace

void attention_forward_v4(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                          int H, int KV, int hd, float p, uint64_t seed) {
  if (hd != 64 || !attention_wgmma_available())
    return attention_forward_v2(ctx, o, lse, q, k, v, B, T, H, KV, hd, p, seed);
  if (p > 0.0f)
    launch<true>(ctx, o, lse, q, k, v, B, T, H, KV, p, seed);
  else
    launch<false>(ctx, o, lse, q, k, v, B, T, H, KV, p, seed);
}

}  // namespace onebit::kernels::cuda
