// The Hard-phase forward of a ternary linear on Hopper's int8 tensor cores (wgmma s8 x s8 -> s32, sm_90a):
// y = (codes · tᵀ) · (row factor · g), exact int32 dot products and one scaling per output, the CPU's VNNI
// path (docs/design-notes.md "Int8 tensor cores for the Hard-phase forward"). cuBLASLt's int8 GEMM writes
// int32 or int8 only, and an int32 output plus a scaling pass would move more bytes than the int8 rate
// saves, so the scaling is this kernel's epilogue.
//
// A block computes 128 rows x 256 columns of y with two warpgroups (64 rows each, one m64n256k32 product
// per 32 bytes of K). Both operands are K-major int8 tiles of 128 bytes of K per row in the 128-byte
// swizzle (tile_byte), and the k-th 32-byte step's descriptor starts 32 bytes further. Tiles stream through a
// four-stage cp.async ring: the copy of tile kt + 2 is issued while tile kt's products run and tile
// kt - 1's may still be running (one wgmma group in flight across iterations), so a buffer is refilled
// only after both warpgroups waited for the products that read it (the barrier at the top of each
// iteration orders that).
#include "onebit/kernels/cuda/async_copy.cuh"
#include "onebit/kernels/cuda/common.cuh"
#include "onebit/kernels/cuda/wgmma.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kBM = 128, kBN = 256, kBK = 128;  // block tile: rows, columns, bytes (= int8 elements) of K
constexpr int kStages = 4, kThreads = 256;
constexpr int kATileBytes = kBM * kBK, kBTileBytes = kBN * kBK, kStageBytes = kATileBytes + kBTileBytes;
constexpr int kSmemBytes = kStages * kStageBytes;  // 192 KB: one block per SM

// Byte offset of (row r, byte c, c % 16 == 0) in a tile of 128-byte rows in wgmma's 128-byte swizzle: rows
// are contiguous and the 16-byte chunks of row r are permuted by r % 8 (chunk c at c ^ (r % 8)), so an atom of
// 8 rows is 1024 aligned bytes and the tensor cores read any 16 bytes of 8 rows without bank conflicts. (The
// no-swizzle "interleaved" layout, core matrix by core matrix, measured 1.6-1.9x slower: the warps stalled
// on shared memory.)
__device__ inline int tile_byte(int r, int c) { return r * 128 + ((((c >> 4) ^ r) & 7) << 4); }

// The descriptor of the 32-byte K step kk of a tile (K-major): the start advances within the swizzle atom,
// LBO is unused (1), SBO is 1024 bytes (one atom of 8 rows), layout type 1 = 128-byte swizzle (bits 62-63).
__device__ inline uint64_t step_desc(const uint8_t* tile, int kk) {
  return wg::desc(tile + kk * 32, 16, 1024) | (uint64_t{1} << 62);
}

// Starts copying rows [row0, row0 + ROWS) x bytes [k0, k0 + 128) of a row-major int8 matrix (`nrows` rows
// of K bytes, row stride ld) into dst; rows past nrows and bytes past K (K % 16 == 0) become zeros. Each 8
// lanes copy one row's 128 bytes (one global line; in shared memory a permutation of one 128-byte row).
template <int ROWS>
__device__ inline void load_tile(uint8_t* dst, const int8_t* src, int row0, int nrows, int k0, int K, size_t ld) {
  static_assert((ROWS * 8) % kThreads == 0, "int8 tile copy: threads must divide the 16-byte vectors");
#pragma unroll
  for (int i = 0; i < ROWS * 8 / kThreads; ++i) {
    const int idx = threadIdx.x + i * kThreads, r = idx >> 3, c = (idx & 7) * 16;
    const bool ok = row0 + r < nrows && k0 + c < K;
    cp_async16(dst + tile_byte(r, c), src + (ok ? (size_t)(row0 + r) * ld + k0 + c : 0), ok);
  }
}

#if ONEBIT_WGMMA
#define OB_D8(i)                                                                                              \
  "+r"(d[(i)]), "+r"(d[(i) + 1]), "+r"(d[(i) + 2]), "+r"(d[(i) + 3]), "+r"(d[(i) + 4]), "+r"(d[(i) + 5]), \
      "+r"(d[(i) + 6]), "+r"(d[(i) + 7])
#define OB_D64(i) OB_D8(i), OB_D8(i + 8), OB_D8(i + 16), OB_D8(i + 24), OB_D8(i + 32), OB_D8(i + 40), OB_D8(i + 48), OB_D8(i + 56)
// d (64 x 256 s32, this thread's 128) += A · Bᵀ over 32 bytes of K, A 64 rows and B 256 rows, K-major in
// shared memory. The accumulator layout is the f32 one of attention_wgmma.cuh: d[4i + e] is row
// 16 warp + g + 8 (e >> 1), column 8i + 2t + (e & 1), lane = 4g + t.
__device__ inline void mma_s8_n256(int32_t* d, uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, "
      "%23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "
      "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, "
      "%65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, "
      "%86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, "
      "%106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, "
      "%124, %125, %126, %127}, %128, %129, p;\n}\n"
      : OB_D64(0), OB_D64(64)
      : "l"(da), "l"(db), "r"(1));
}
#undef OB_D64
#undef OB_D8
#else
__device__ inline void mma_s8_n256(int32_t*, uint64_t, uint64_t) { __trap(); }
#endif

__global__ void __launch_bounds__(kThreads, 1)
    int8_gemm_kernel(__nv_bfloat16* __restrict__ y, const int8_t* __restrict__ xc, const float* __restrict__ xf,
                     const int8_t* __restrict__ wc, const float* __restrict__ g, int M, int N, int K) {
  extern __shared__ uint8_t smem_raw[];
  // Swizzle atoms must start on 1024-byte boundaries (the launch adds that much slack).
  uint8_t* smem = smem_raw + ((1024 - ((uint32_t)__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
  const int n0 = blockIdx.x * kBN, m0 = blockIdx.y * kBM;
  const int wgrp = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
  const int KT = (K + kBK - 1) / kBK;
  auto load_stage = [&](int kt) {
    if (kt < KT) {
      uint8_t* st = smem + (kt % kStages) * kStageBytes;
      load_tile<kBM>(st, xc, m0, M, kt * kBK, K, (size_t)K);
      load_tile<kBN>(st + kATileBytes, wc, n0, N, kt * kBK, K, (size_t)K);
    }
    cp_async_commit();  // an empty group past the end keeps the group count uniform
  };
#pragma unroll
  for (int s = 0; s < kStages - 2; ++s) load_stage(s);
  int32_t d[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) d[i] = 0;
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<kStages - 3>();  // this thread's copies of tile kt have landed
    wg::fence_async_smem();
    __syncthreads();  // everyone's copies of tile kt; both warpgroups are done with tile kt - 2's products
    load_stage(kt + kStages - 2);  // into tile kt - 2's buffer
    const uint8_t* a = smem + (kt % kStages) * kStageBytes + wgrp * (kBM / 2) * kBK;
    const uint8_t* b = smem + (kt % kStages) * kStageBytes + kATileBytes;
    wg::fence();
#pragma unroll
    for (int kk = 0; kk < kBK / 32; ++kk)
      mma_s8_n256(d, step_desc(a, kk), step_desc(b, kk));
    wg::commit();
    wg::wait<1>();  // tile kt - 1's products are done
  }
  wg::wait_all();
  // Epilogue: y = bf16(acc · (xf[row] · g)). The block's 128 x 256 outputs go through shared memory (free now:
  // every product has read its tiles) so that global stores are whole 16-byte vectors of a row; stored
  // directly, a warp's bf16 pairs used half of every 32-byte sector. Rows are padded by 16 bytes: the 8 rows
  // a warp writes at once then start in different banks.
  constexpr int kLdOut = kBN + 8;  // bf16 elements per staged row
  __syncthreads();  // the other warpgroup may still be reading the last tiles
  __nv_bfloat16* out = reinterpret_cast<__nv_bfloat16*>(smem);
  const float gv = *g;
  const int gq = lane >> 2, tq = lane & 3;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = wgrp * 64 + warp * 16 + gq + 8 * h;
    const float f = m0 + r < M ? __fmul_rn(xf[m0 + r], gv) : 0.0f;
#pragma unroll
    for (int i = 0; i < 32; ++i)
      *reinterpret_cast<__nv_bfloat162*>(out + r * kLdOut + 8 * i + 2 * tq) = __floats2bfloat162_rn(
          __fmul_rn((float)d[4 * i + 2 * h], f), __fmul_rn((float)d[4 * i + 2 * h + 1], f));
  }
  __syncthreads();
  const bool vec = N % 8 == 0;  // 16-byte aligned rows of y
#pragma unroll 4
  for (int idx = threadIdx.x; idx < kBM * (kBN / 8); idx += kThreads) {
    const int r = idx / (kBN / 8), c = (idx % (kBN / 8)) * 8, row = m0 + r, col = n0 + c;
    if (row >= M || col >= N) continue;
    const __nv_bfloat16* src = out + r * kLdOut + c;
    __nv_bfloat16* dst = y + (size_t)row * N + col;
    if (vec) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
      for (int e = 0; e < 8 && col + e < N; ++e) dst[e] = src[e];
    }
  }
}

__global__ void ternary_codes_kernel(int8_t* t, const __nv_bfloat16* w, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float v = __bfloat162float(w[i]);
    t[i] = (int8_t)(v > 0.0f ? 1 : v < 0.0f ? -1 : 0);
  }
}

}  // namespace

bool int8_gemm_available() { return attention_wgmma_available(); }  // the same sm_90a code and device check

void int8_linear_forward(Context& ctx, bf16* y, const int8_t* xc, const float* xf, const int8_t* wc, const float* g,
                         int M, int N, int K) {
  OB_CHECK(int8_gemm_available(), "int8_linear_forward: needs sm_90a code and a compute capability 9.0 device");
  OB_CHECK(M > 0 && N > 0 && K > 0 && K % 16 == 0 && N % 2 == 0, "int8_linear_forward: shape ", M, " x ", N, " x ", K,
           " needs K % 16 == 0 and an even N");
  OB_CHECK(aligned16(xc) && aligned16(wc) && ((uintptr_t)y & 3) == 0, "int8_linear_forward: unaligned operands");
  static const bool attr = [] {
    OB_CUDA(cudaFuncSetAttribute(int8_gemm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes + 1024));
    return true;
  }();
  (void)attr;
  const dim3 grid((unsigned)((N + kBN - 1) / kBN), (unsigned)((M + kBM - 1) / kBM));
  int8_gemm_kernel<<<grid, kThreads, kSmemBytes + 1024, stream_of(ctx)>>>(dev(y), xc, xf, wc, g, M, N, K);
  check_last_launch("int8_linear_forward");
}

void ternary_codes(Context& ctx, int8_t* t, const bf16* w_eff, size_t n) {
  if (n == 0) return;
  ternary_codes_kernel<<<blocks_for(n, 256, 132 * 16), 256, 0, stream_of(ctx)>>>(t, dev(w_eff), n);
  check_last_launch("ternary_codes");
}

}  // namespace onebit::kernels::cuda
