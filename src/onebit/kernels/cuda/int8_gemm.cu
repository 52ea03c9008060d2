// The Hard-phase forward of a ternary linear on Hopper's int8 tensor cores (wgmma s8 x s8 -> s32, sm_90a):
// y = (codes · tᵀ) · (row factor · g), exact int32 dot products and one scaling per output, the CPU's VNNI
// path (docs/design-notes.md "Int8 tensor cores for the Hard-phase forward"). cuBLASLt's int8 GEMM writes
// int32 or int8 only, and an int32 output plus a scaling pass would move more bytes than the int8 rate
// saves, so the scaling is this kernel's epilogue.
//
// A persistent block per SM walks the output tiles (128 rows x 256 columns each, the columns fastest) with
// three roles: one producer warp issues TMA copies of 128-byte K tiles of both operands into a four-stage
// ring (the copies of the next output tile start while the last one's epilogue runs), and two consumer
// warpgroups (64 rows each) run one m64n256k32 product per 32 bytes of K from it, releasing each stage once
// the products that read it are done. Both operands are K-major int8 tiles in wgmma's 128-byte swizzle,
// which is the layout TMA writes with CU_TENSOR_MAP_SWIZZLE_128B. The epilogue scales, rounds to bf16 into
// 64-column boxes of shared memory and hands them to TMA stores, which drain while the next tile computes.
// (The first version, one output tile per block and cp.async issued by the computing warps, ran the
// presets' shapes at 650-940 int8 TOP/s: each block's prologue and epilogue were exposed.)
//
// One launch may also serve a group of linears that read the same input (Q, K, V; gate, up): their weight codes
// stacked as one [N, K] matrix, the product's columns split into consecutive segments, each written to its own
// output with its own scale (int8_linear_forward_group). A segment boundary falls on a tile boundary, so a tile
// belongs to one segment and only the epilogue knows about them. The single product is the one-segment case.
#include "onebit/kernels/cuda/common.cuh"
#include "onebit/kernels/cuda/tma.cuh"
#include "onebit/kernels/cuda/wgmma.cuh"

namespace onebit::kernels::cuda {
namespace {

constexpr int kBM = 128, kBN = 256, kBK = 128;  // output tile: rows, columns; bytes (= int8 elements) of K a stage
constexpr int kStages = 4, kConsumers = 2;
constexpr int kMaxSegments = kInt8GroupMax;  // outputs of one product (int8_linear_forward_group)
constexpr int kThreads = 128 * kConsumers + 32;  // the consumer warpgroups, then the producer warp
constexpr int kATileBytes = kBM * kBK, kBTileBytes = kBN * kBK, kStageBytes = kATileBytes + kBTileBytes;
constexpr int kBoxCols = 64;                        // an output box: 64 bf16 = one 128-byte swizzle row
constexpr int kBoxBytes = (kBM / kConsumers) * kBoxCols * 2;  // a warpgroup's 64 rows of it: 8 KB
constexpr int kOutBytes = kConsumers * 2 * kBoxBytes;        // two boxes per warpgroup (double-buffered)
constexpr int kSmemBytes = kStages * kStageBytes + kOutBytes + 2 * kStages * 8;  // + the ring's barriers
// 192 + 32 KB + 64 bytes (+ 1 KB alignment slack at launch): one block per SM.

// Byte offset of (row r, byte c, c % 16 == 0) in a tile of 128-byte rows in the 128-byte swizzle (what TMA
// writes and reads with CU_TENSOR_MAP_SWIZZLE_128B and wgmma reads with layout type 1): rows
// are contiguous and the 16-byte chunks of row r are permuted by r % 8 (chunk c at c ^ (r % 8)), so an atom of
// 8 rows is 1024 aligned bytes and the tensor cores read any 16 bytes of 8 rows without bank conflicts. (The
// no-swizzle "interleaved" layout, core matrix by core matrix, measured 1.6-1.9x slower: the warps stalled
// on shared memory.)
__device__ inline int tile_byte(int r, int c) { return r * 128 + ((((c >> 4) ^ r) & 7) << 4); }


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

// The outputs of one product: segment s is columns [col0[s], col0[s + 1]) of it, written to y[s] (row-major, its
// width a row) scaled by *g[s]. col0[0] = 0, the boundaries between segments are multiples of kBN, and col0[s] = N
// for every s >= count (so no tile picks an unused segment).
struct Segments {
  __nv_bfloat16* y[kMaxSegments];
  const float* g[kMaxSegments];
  int col0[kMaxSegments + 1];
};
// The segment that holds the output tile starting at column n0, with its store map.
struct Segment {
  const CUtensorMap* map;
  __nv_bfloat16* y;
  const float* g;
  int col0, width;
};
__device__ inline Segment segment_at(const Segments& segs, const CUtensorMap* const* maps, int n0) {
  // Constant indices under selects: a dynamic index would copy the parameters to local memory.
  Segment seg{maps[0], segs.y[0], segs.g[0], 0, segs.col0[1]};
#pragma unroll
  for (int j = 1; j < kMaxSegments; ++j)
    if (n0 >= segs.col0[j])
      seg = Segment{maps[j], segs.y[j], segs.g[j], segs.col0[j], segs.col0[j + 1] - segs.col0[j]};
  return seg;
}

// Grid: at most one block per SM; block b takes tiles b, b + gridDim.x, ... With kTmaStore (every segment's width
// % 8 == 0: its rows are 16-byte aligned, as TMA needs) the boxes leave through TMA stores, one map per segment
// (ymap0..2; those of unused segments any valid map); otherwise (one segment) the warpgroup copies them out
// element by element (shapes no model has; the tests' odd widths).
template <bool kTmaStore>
__global__ void __launch_bounds__(kThreads, 1)
    int8_gemm_kernel(const __grid_constant__ CUtensorMap xmap, const __grid_constant__ CUtensorMap wmap,
                     const __grid_constant__ CUtensorMap ymap0, const __grid_constant__ CUtensorMap ymap1,
                     const __grid_constant__ CUtensorMap ymap2, const Segments segs, const float* __restrict__ xf,
                     int M, int N, int K) {
  static_assert(kMaxSegments == 3, "one store map parameter per segment");
  const CUtensorMap* const ymaps[kMaxSegments] = {&ymap0, &ymap1, &ymap2};
  extern __shared__ uint8_t smem_raw[];
  // Swizzle atoms (and TMA's swizzled boxes) must start on 1024-byte boundaries (the launch adds the slack).
  uint8_t* smem = smem_raw + ((1024 - ((uint32_t)__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
  uint8_t* outbox = smem + kStages * kStageBytes;
  uint64_t* full = reinterpret_cast<uint64_t*>(outbox + kOutBytes);  // a stage's copies landed
  uint64_t* empty = full + kStages;                                  // both warpgroups are done reading it
  const int tiles_n = (N + kBN - 1) / kBN, tiles = tiles_n * ((M + kBM - 1) / kBM);
  const int KT = (K + kBK - 1) / kBK;
  const int wgrp = threadIdx.x >> 7;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) tma::mbar_init(&full[s], 1), tma::mbar_init(&empty[s], kConsumers);
    tma::fence_barrier_init();
  }
  __syncthreads();

  if (wgrp == kConsumers) {  // the producer warp; one lane issues every copy
    if (threadIdx.x != 128 * kConsumers) return;
    int stage = 0;
    uint32_t phase = 0;
    for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int m0 = tile / tiles_n * kBM, n0 = tile % tiles_n * kBN;
      for (int kt = 0; kt < KT; ++kt) {
        tma::mbar_wait(&empty[stage], phase ^ 1);  // the first pass over the ring finds it empty
        uint8_t* st = smem + stage * kStageBytes;
        tma::mbar_expect_tx(&full[stage], kStageBytes);  // boxes past the edges count whole (zero-filled)
        tma::load_2d(st, &xmap, kt * kBK, m0, &full[stage]);
        tma::load_2d(st + kATileBytes, &wmap, kt * kBK, n0, &full[stage]);
        if (++stage == kStages) stage = 0, phase ^= 1;
      }
    }
    return;
  }

  const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, gq = lane >> 2, tq = lane & 3;
  const bool leader = (threadIdx.x & 127) == 0;  // signals for its warpgroup
  int stage = 0, boxes = 0;  // boxes: how many output boxes this warpgroup has written (it alternates buffers)
  uint32_t phase = 0;
  int32_t d[128];
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int m0 = tile / tiles_n * kBM, n0 = tile % tiles_n * kBN;
#pragma unroll
    for (int i = 0; i < 128; ++i) d[i] = 0;
    int last = 0;
    for (int kt = 0; kt < KT; ++kt) {
      tma::mbar_wait(&full[stage], phase);
      const uint8_t* a = smem + stage * kStageBytes + wgrp * (kBM / kConsumers) * kBK;
      const uint8_t* b = smem + stage * kStageBytes + kATileBytes;
      wg::fence();
#pragma unroll
      for (int kk = 0; kk < kBK / 32; ++kk) mma_s8_n256(d, wg::sw128_kmajor_desc(a, kk), wg::sw128_kmajor_desc(b, kk));
      wg::commit();
      wg::wait<1>();  // the previous stage's products are done: its buffers may be refilled
      if (kt > 0 && leader) tma::mbar_arrive(&empty[last]);
      last = stage;
      if (++stage == kStages) stage = 0, phase ^= 1;
    }
    wg::wait_all();
    if (leader) tma::mbar_arrive(&empty[last]);

    // Epilogue: y = bf16(acc · (xf[row] · g)) into the tile's segment, 64 columns at a time through this
    // warpgroup's two boxes. A box is rewritten only after the store issued from it two boxes ago has read it
    // (buffers alternate over all the boxes a warpgroup writes, across tiles too: a last tile narrower than 256
    // columns writes fewer).
    const int rbase = wgrp * (kBM / kConsumers), r0 = warp * 16 + gq;  // this thread's rows: r0, r0 + 8
    const Segment seg = segment_at(segs, ymaps, n0);  // found here: nothing of it lives across the products
    const int c0 = n0 - seg.col0;                      // the tile's first column in its segment's output
    const float gv = *seg.g;
    float f[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = m0 + rbase + r0 + 8 * h;
      f[h] = row < M ? __fmul_rn(xf[row], gv) : 0.0f;
    }
#pragma unroll
    for (int c = 0; c < kBN / kBoxCols; ++c) {
      // Segments before the last end on tile boundaries: only the product's end cuts a tile short (a comparison
      // with a parameter; the segment's own end would hold a register through the epilogue).
      if (n0 + c * kBoxCols >= N) break;
      uint8_t* box = outbox + (wgrp * 2 + (boxes++ & 1)) * kBoxBytes;
      if constexpr (kTmaStore) {
        if (leader) tma::store_wait_read<1>();
      }
      tma::named_barrier(1 + wgrp, 128);
#pragma unroll
      for (int j = 0; j < kBoxCols / 8; ++j) {
        const int i = c * (kBoxCols / 8) + j;  // the accumulators' 8-column group
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = r0 + 8 * h;  // r % 8 == gq: the 8 rows of an instruction hit 8 different chunks
          *reinterpret_cast<__nv_bfloat162*>(box + tile_byte(r, 16 * j) + 4 * tq) = __floats2bfloat162_rn(
              __fmul_rn((float)d[4 * i + 2 * h], f[h]), __fmul_rn((float)d[4 * i + 2 * h + 1], f[h]));
        }
      }
      if constexpr (kTmaStore) {
        wg::fence_async_smem();  // the generic-proxy writes above, before the async-proxy store reads them
        tma::named_barrier(1 + wgrp, 128);
        if (leader) {
          tma::store_2d(seg.map, c0 + c * kBoxCols, m0 + rbase, box);
          tma::store_commit();
        }
      } else {
        tma::named_barrier(1 + wgrp, 128);
        for (int idx = threadIdx.x & 127; idx < (kBM / kConsumers) * kBoxCols; idx += 128) {
          const int r = idx / kBoxCols, cc = idx % kBoxCols, row = m0 + rbase + r, col = c0 + c * kBoxCols + cc;
          if (row < M && col < seg.width)
            seg.y[(size_t)row * seg.width + col] =
                *reinterpret_cast<const __nv_bfloat16*>(box + tile_byte(r, cc * 2 & ~15) + (cc * 2 & 15));
        }
      }
    }
  }
  if constexpr (kTmaStore) {
    if (leader) tma::store_wait_all();
  }
}

// t = sign(w) for up to kCodeJobs weights in one launch (blockIdx.y picks the job): eight at a time (16-byte
// loads, 8-byte stores) where both are aligned, else one by one; the tail past the last whole 8 one by one.
constexpr int kCodeJobs = 8;
struct CodeJobs {
  TernaryCodesJob job[kCodeJobs];
};
__device__ inline int8_t sign_code(__nv_bfloat16 w) {
  const float v = __bfloat162float(w);
  return (int8_t)(v > 0.0f ? 1 : v < 0.0f ? -1 : 0);
}
__global__ void ternary_codes_kernel(CodeJobs jobs) {
  const TernaryCodesJob& j = jobs.job[blockIdx.y];
  int8_t* t = j.t;
  const auto* w = reinterpret_cast<const __nv_bfloat16*>(j.w_eff);
  const size_t n = j.n, stride = (size_t)gridDim.x * blockDim.x, i0 = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  const size_t whole = (reinterpret_cast<uintptr_t>(w) & 15) == 0 && (reinterpret_cast<uintptr_t>(t) & 7) == 0 ? n / 8 : 0;
  for (size_t i = i0; i < whole; i += stride) {
    const uint4 u = reinterpret_cast<const uint4*>(w)[i];
    const __nv_bfloat16* h = reinterpret_cast<const __nv_bfloat16*>(&u);
    uint2 out;
    int8_t* o = reinterpret_cast<int8_t*>(&out);
#pragma unroll
    for (int e = 0; e < 8; ++e) o[e] = sign_code(h[e]);
    reinterpret_cast<uint2*>(t)[i] = out;
  }
  for (size_t i = whole * 8 + i0; i < n; i += stride) t[i] = sign_code(w[i]);
}

// The segments of a group's outputs, which follow each other in the product's columns.
Segments segments_of(const Int8GroupOut* outs, int count) {
  Segments segs{};
  for (int s = 0; s < kMaxSegments; ++s) {
    const Int8GroupOut& o = outs[std::min(s, count - 1)];  // unused entries repeat the last (never picked)
    segs.y[s] = dev(o.y), segs.g[s] = o.g;
    segs.col0[s + 1] = segs.col0[s] + (s < count ? outs[s].width : 0);
  }
  return segs;
}

// The TMA store map of one output: boxes of a warpgroup's 64 rows by 64 columns.
CUtensorMap output_map(const Int8GroupOut& o, int M) {
  return swizzled_tile_map(o.y, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, M, o.width, (uint64_t)o.width * 2, kBM / kConsumers,
                           kBoxCols);
}

template <bool kTmaStore>
void launch_int8_gemm(Context& ctx, const Int8GroupOut* outs, int count, const int8_t* xc, const float* xf,
                      const int8_t* wc, int M, int K) {
  static const bool allowed = (allow_smem(int8_gemm_kernel<kTmaStore>, kSmemBytes + 1024), true);
  (void)allowed;
  const Segments segs = segments_of(outs, count);
  const int N = segs.col0[kMaxSegments];
  const CUtensorMap xmap = swizzled_tile_map(xc, CU_TENSOR_MAP_DATA_TYPE_UINT8, M, K, K, kBM, kBK);
  const CUtensorMap wmap = swizzled_tile_map(wc, CU_TENSOR_MAP_DATA_TYPE_UINT8, N, K, K, kBN, kBK);
  // Without TMA stores the maps are unused, as are those past the last segment: any valid one (x's) fills them.
  CUtensorMap ymaps[kMaxSegments];
  for (int s = 0; s < kMaxSegments; ++s) ymaps[s] = kTmaStore && s < count ? output_map(outs[s], M) : xmap;
  const int tiles = ((N + kBN - 1) / kBN) * ((M + kBM - 1) / kBM);
  int8_gemm_kernel<kTmaStore><<<std::min(tiles, sm_count()), kThreads, kSmemBytes + 1024, stream_of(ctx)>>>(
      xmap, wmap, ymaps[0], ymaps[1], ymaps[2], segs, xf, M, N, K);
  check_last_launch("int8_linear_forward");
}

void check_operands(const char* what, const int8_t* xc, const int8_t* wc, int M, int N, int K) {
  OB_CHECK(int8_gemm_available(), what, ": needs sm_90a code and a compute capability 9.0 device");
  OB_CHECK(M > 0 && N > 0 && K > 0 && K % 16 == 0 && N % 2 == 0, what, ": shape ", M, " x ", N, " x ", K,
           " needs K % 16 == 0 and an even N");
  OB_CHECK(aligned16(xc) && aligned16(wc), what, ": unaligned operands");
}

}  // namespace

bool int8_gemm_available() { return attention_wgmma_available(); }  // the same sm_90a code and device check

void int8_linear_forward(Context& ctx, bf16* y, const int8_t* xc, const float* xf, const int8_t* wc, const float* g,
                         int M, int N, int K) {
  check_operands("int8_linear_forward", xc, wc, M, N, K);
  OB_CHECK(((uintptr_t)y & 3) == 0, "int8_linear_forward: unaligned output");
  const Int8GroupOut out{y, g, N};
  if (N % 8 == 0 && aligned16(y))
    launch_int8_gemm<true>(ctx, &out, 1, xc, xf, wc, M, K);
  else
    launch_int8_gemm<false>(ctx, &out, 1, xc, xf, wc, M, K);
}

bool int8_group_fits(const Int8GroupOut* outs, int count) {
  if (count < 1 || count > kInt8GroupMax) return false;
  for (int s = 0; s < count; ++s) {
    const Int8GroupOut& o = outs[s];
    if (!o.g || o.width <= 0 || o.width % 8 != 0 || !aligned16(o.y) || (s + 1 < count && o.width % kBN != 0))
      return false;
  }
  return true;
}

void int8_linear_forward_group(Context& ctx, const Int8GroupOut* outs, int count, const int8_t* xc, const float* xf,
                               const int8_t* wc, int M, int K) {
  OB_CHECK(int8_group_fits(outs, count), "int8_linear_forward_group: needs 1 to ", kInt8GroupMax, " outputs (got ",
           count, "), 16-byte aligned, with widths % 8 == 0 and all but the last % ", kBN, " == 0");
  check_operands("int8_linear_forward_group", xc, wc, M, segments_of(outs, count).col0[kMaxSegments], K);
  launch_int8_gemm<true>(ctx, outs, count, xc, xf, wc, M, K);
}

void ternary_codes_many(Context& ctx, const TernaryCodesJob* jobs, size_t njobs) {
  for (size_t first = 0; first < njobs; first += kCodeJobs) {
    CodeJobs batch{};
    const int count = (int)std::min<size_t>(kCodeJobs, njobs - first);
    size_t most = 0;
    for (int i = 0; i < count; ++i) batch.job[i] = jobs[first + i], most = std::max(most, jobs[first + i].n);
    if (most == 0) continue;
    ternary_codes_kernel<<<dim3(blocks_for(most / 8 + 1, 256, 132 * 4), (unsigned)count), 256, 0, stream_of(ctx)>>>(
        batch);
    check_last_launch("ternary_codes");
  }
}

void ternary_codes(Context& ctx, int8_t* t, const bf16* w_eff, size_t n) {
  const TernaryCodesJob job{t, w_eff, n};
  ternary_codes_many(ctx, &job, 1);
}

}  // namespace onebit::kernels::cuda
