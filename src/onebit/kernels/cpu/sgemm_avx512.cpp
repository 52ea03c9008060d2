// Goto-style SGEMM cut up by sgemm_plan.h. Per chunk, all threads pack op(A) into KC x MR row panels and op(B)
// into KC x NR column panels, once, for every K block of the chunk; then each task (a macro-tile of C over a run of
// K blocks) runs a 12x32 register tile of 24 zmm accumulators, MC rows at a time against each B panel (the B panel
// stays in L1, the A rows in L2). Two pool jobs per chunk, none per K block. Edges are zero-padded in the packs
// and written back with masked stores. The order of every sum depends on N and K only, so results are the same
// bits at any thread count and a row's result does not depend on the number of rows.
#include "onebit/kernels/cpu/sgemm_avx512.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/kernels/cpu/scratch.h"
#include "onebit/kernels/cpu/sgemm_plan.h"
#include "onebit/kernels/cpu/thread_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace onebit::kernels::cpu {

#if defined(__x86_64__)
namespace {

constexpr int MR = kSgemmMR, NR = kSgemmNR, MC = kSgemmMC;

// beta_eff == 0: overwrite C (C may hold garbage, never read); otherwise C = beta_eff*C + alpha*acc.
__attribute__((target("avx512f"))) void kernel_12x32(int kc, const float* Ap, const float* Bp, float* C, int ldc,
                                                    float alpha, float beta_eff, int mr, int nr) {
  __m512 c[MR][2];
  for (int r = 0; r < MR; ++r) c[r][0] = c[r][1] = _mm512_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(Ap[r]);
      c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
    }
    Ap += MR;
    Bp += NR;
  }
  const __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta_eff);
  const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1);
  for (int r = 0; r < mr; ++r) {
    float* cr = C + (size_t)r * ldc;
    __m512 v0 = _mm512_mul_ps(al, c[r][0]), v1 = _mm512_mul_ps(al, c[r][1]);
    if (beta_eff != 0.0f) {
      v0 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m0, cr), v0);
      v1 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m1, cr + 16), v1);
    }
    _mm512_mask_storeu_ps(cr, m0, v0);
    _mm512_mask_storeu_ps(cr + 16, m1, v1);
  }
}

// dst[k][r] = src[r][k] for r < valid (row r of src at src + r * lds), 0 for valid <= r < width; k < kc. The
// transposing packs (op(A) not transposed, op(B) transposed): 4 rows x 16 k at a time through 4x4 transposes
// in each 128-bit lane, stored as 4-float pieces, about four times fewer instructions than element by element
// (packing op(A) cost about an eighth of the micro-kernel's time that way). gcc 12's AVX-512 headers fill the
// unused pass-through operand of these intrinsics with an intentionally undefined vector, which
// -Wmaybe-uninitialized reports at every use: silenced for this function only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void pack_transposed(const float* src, size_t lds, int width, int valid, int kc,
                                                        float* dst) {
  int r = 0;
  for (; r + 4 <= valid; r += 4) {
    const float *s0 = src + r * lds, *s1 = s0 + lds, *s2 = s1 + lds, *s3 = s2 + lds;
    int k = 0;
    for (; k + 16 <= kc; k += 16) {
      const __m512 a = _mm512_loadu_ps(s0 + k), b = _mm512_loadu_ps(s1 + k), c = _mm512_loadu_ps(s2 + k),
                   d = _mm512_loadu_ps(s3 + k);
      const __m512 ab_lo = _mm512_unpacklo_ps(a, b), ab_hi = _mm512_unpackhi_ps(a, b);  // a0 b0 a1 b1 / a2 b2 a3 b3
      const __m512 cd_lo = _mm512_unpacklo_ps(c, d), cd_hi = _mm512_unpackhi_ps(c, d);
      auto lo = [](__m512 x, __m512 y) {
        return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)));
      };
      auto hi = [](__m512 x, __m512 y) {
        return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)));
      };
      // t[j], lane l: rows a..d at k + 4l + j.
      const __m512 t[4] = {lo(ab_lo, cd_lo), hi(ab_lo, cd_lo), lo(ab_hi, cd_hi), hi(ab_hi, cd_hi)};
      float* o = dst + (size_t)k * width + r;
      for (int j = 0; j < 4; ++j) {
        _mm_storeu_ps(o + (size_t)j * width, _mm512_castps512_ps128(t[j]));
        _mm_storeu_ps(o + (size_t)(4 + j) * width, _mm512_extractf32x4_ps(t[j], 1));
        _mm_storeu_ps(o + (size_t)(8 + j) * width, _mm512_extractf32x4_ps(t[j], 2));
        _mm_storeu_ps(o + (size_t)(12 + j) * width, _mm512_extractf32x4_ps(t[j], 3));
      }
    }
    for (; k < kc; ++k)
      for (int q = 0; q < 4; ++q) dst[(size_t)k * width + r + q] = src[(r + q) * lds + k];
  }
  for (; r < width; ++r)
    if (r < valid)
      for (int k = 0; k < kc; ++k) dst[(size_t)k * width + r] = src[r * lds + k];
    else
      for (int k = 0; k < kc; ++k) dst[(size_t)k * width + r] = 0.0f;
}
#pragma GCC diagnostic pop

// dst[k][c] = src[k][c] for c < valid (row k of src at src + k * lds), 0 for valid <= c < width (12 or 32); k < kc.
// The packs that copy rows (op(A) transposed, op(B) not): one masked load and store per 16 floats.
__attribute__((target("avx512f"))) void pack_rows(const float* src, size_t lds, int width, int valid, int kc,
                                                  float* dst) {
  const auto mask = [](int n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1); };
  const __mmask16 load0 = mask(valid), load1 = mask(valid - 16);
  const __mmask16 store0 = mask(width), store1 = mask(width - 16);
  for (int k = 0; k < kc; ++k, src += lds, dst += width) {
    _mm512_mask_storeu_ps(dst, store0, _mm512_maskz_loadu_ps(load0, src));
    if (width > 16) _mm512_mask_storeu_ps(dst + 16, store1, _mm512_maskz_loadu_ps(load1, src + 16));
  }
}

// One MR-row micro-panel of op(A)[i0:i0+mr, p0:p0+kc], stored k-major ([k][MR]), zero-padded.
void pack_a_panel(bool ta, const float* A, int lda, int i0, int mr, int p0, int kc, float* Ap) {
  if (ta)
    pack_rows(A + (size_t)p0 * lda + i0, lda, MR, mr, kc, Ap);
  else
    pack_transposed(A + (size_t)i0 * lda + p0, lda, MR, mr, kc, Ap);
}

// One NR-column micro-panel of op(B)[p0:p0+kc, j0:j0+nr] ([k][NR]), zero-padded.
void pack_b_panel(bool tb, const float* B, int ldb, int p0, int kc, int j0, int nr, float* Bp) {
  if (tb)
    pack_transposed(B + (size_t)j0 * ldb + p0, ldb, NR, nr, kc, Bp);  // column j of op(B) is row j of B
  else
    pack_rows(B + (size_t)p0 * ldb + j0, ldb, NR, nr, kc, Bp);
}

// Calls f(i) for i in [0, n): over the pool when `parallel`, else inline.
template <typename F>
void run(bool parallel, int64_t n, F&& f) {
  if (parallel)
    parallel_for(n, f);
  else
    for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace

bool cpu_has_avx512f() {
  // __builtin_cpu_init: the CPU model may not be filled in yet if this first runs during static
  // initialization. libgcc reports avx512f only when the OS also saves zmm state (XGETBV).
  static const bool ok = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
  return ok;
}

void sgemm_avx512(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                  float beta, float* C, int ldc, bool parallel) {
  // Nested inside a pool item the pool runs everything inline: plan for one thread then.
  parallel = parallel && pool_threads() > 1 && !in_parallel_region();
  const SgemmPlan plan = plan_sgemm(M, N, K, parallel ? pool_threads() : 1);
  const int kc_max = plan.kc;
  const size_t a_panel = (size_t)kc_max * MR, b_panel = (size_t)kc_max * NR;
  // The caller's buffers: one chunk's packed op(A) and op(B) ([K block][panel], kc x MR and kc x NR floats each)
  // and the segments' partial sums.
  static thread_local std::vector<float> abuf, bbuf, pbuf;
  for (int kci = 0; kci < plan.kchunks(); ++kci)
    for (int mci = 0; mci < plan.mchunks(); ++mci)
      for (int nci = 0; nci < plan.nchunks(); ++nci) {
        const SgemmChunk ch = plan.chunk(kci, mci, nci);
        const int i0 = ch.ip0 * MR, nrows = std::min(M - i0, ch.mpanels * MR);
        const int j0 = ch.jp0 * NR, ncols = std::min(N - j0, ch.npanels * NR);
        float* Ap = aligned_scratch(abuf, (size_t)ch.kblocks * ch.mpanels * a_panel);
        float* Bp = aligned_scratch(bbuf, (size_t)ch.kblocks * ch.npanels * b_panel);
        // Both operands of the chunk, packed once by all threads together: no barrier per K block afterwards.
        const int64_t apanels = (int64_t)ch.kblocks * ch.mpanels, panels = apanels + (int64_t)ch.kblocks * ch.npanels;
        auto pack = [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) {
            const bool is_a = i < apanels;
            const int64_t local = is_a ? i : i - apanels, count = is_a ? ch.mpanels : ch.npanels;
            const int kb = (int)(local / count), q = (int)(local % count);
            const int p0 = (ch.kb0 + kb) * kc_max, kc = std::min(kc_max, K - p0);
            if (is_a)
              pack_a_panel(ta, A, lda, i0 + q * MR, std::min(MR, nrows - q * MR), p0, kc, Ap + (size_t)local * a_panel);
            else
              pack_b_panel(tb, B, ldb, p0, kc, j0 + q * NR, std::min(NR, ncols - q * NR), Bp + (size_t)local * b_panel);
          }
        };
        if (parallel)
          parallel_ranges(panels, 4, pack);
        else
          pack(0, panels);
        // Segment s > 0 sums into partial s (nrows x ncols); the last task to finish a tile adds the partials to C
        // in segment order, so every element's sum has the same order whichever threads ran the segments.
        float* P = ch.segments > 1 ? aligned_scratch(pbuf, (size_t)(ch.segments - 1) * nrows * ncols) : nullptr;
        const auto finished = std::make_unique<std::atomic<int>[]>((size_t)ch.mparts * ch.nparts);
        const float beta_chunk = kci == 0 ? beta : 1.0f;
        float* Cc = C + (size_t)i0 * ldc + j0;
        run(parallel, ch.tasks(), [&](int64_t t) {
          const SgemmTask k = ch.task((int)t);
          float* D = k.seg == 0 ? Cc : P + (size_t)(k.seg - 1) * nrows * ncols;
          const int ldd = k.seg == 0 ? ldc : ncols;
          auto micro_tiles = [&](int kb, int ia, int ib, int jq) {
            const int kc = std::min(kc_max, K - (ch.kb0 + kb) * kc_max);
            const float beta_eff = kb > k.kb0 ? 1.0f : k.seg == 0 ? beta_chunk : 0.0f;
            const float* Akb = Ap + (size_t)kb * ch.mpanels * a_panel;
            const float* Bq = Bp + ((size_t)kb * ch.npanels + jq) * b_panel;
            for (int ip = ia; ip < ib; ++ip)
              kernel_12x32(kc, Akb + (size_t)ip * a_panel, Bq, D + (size_t)ip * MR * ldd + jq * NR, ldd, alpha,
                           beta_eff, std::min(MR, nrows - ip * MR), std::min(NR, ncols - jq * NR));
          };
          // MC rows at a time against each B panel: the B panel stays in L1, the A rows in L2. Where the task's
          // C tile outgrows L2 (the LM head's forward: 131 x 5344 floats, 2.8 MB, at 2 threads) and the MC rows
          // of every K block still fit there, the K blocks run innermost, so each 12 x 32 tile of C is finished
          // while it is in cache instead of C making a round trip through memory per K block. Each element's sum
          // runs in the same order either way (K block by K block), so the bits do not change.
          const size_t c_bytes = (size_t)(k.ip1 - k.ip0) * MR * (k.jq1 - k.jq0) * NR * sizeof(float);
          const size_t a_bytes = (size_t)(k.kb1 - k.kb0) * (MC / MR) * a_panel * sizeof(float);
          if (k.kb1 - k.kb0 > 1 && c_bytes > (size_t(1) << 20) && a_bytes <= (size_t(512) << 10)) {
            for (int ia = k.ip0; ia < k.ip1; ia += MC / MR)
              for (int jq = k.jq0; jq < k.jq1; ++jq)
                for (int kb = k.kb0; kb < k.kb1; ++kb) micro_tiles(kb, ia, std::min(k.ip1, ia + MC / MR), jq);
          } else {
            for (int kb = k.kb0; kb < k.kb1; ++kb)
              for (int ia = k.ip0; ia < k.ip1; ia += MC / MR)
                for (int jq = k.jq0; jq < k.jq1; ++jq) micro_tiles(kb, ia, std::min(k.ip1, ia + MC / MR), jq);
          }
          if (ch.segments == 1) return;
          // acq_rel: the last finisher sees every other segment's partial of this tile.
          const int tile = (int)(t % ((int64_t)ch.mparts * ch.nparts));
          if (finished[tile].fetch_add(1, std::memory_order_acq_rel) != ch.segments - 1) return;
          const int r0 = k.ip0 * MR, r1 = std::min(nrows, k.ip1 * MR), c0 = k.jq0 * NR, c1 = std::min(ncols, k.jq1 * NR);
          for (int s = 1; s < ch.segments; ++s) {
            const float* Ps = P + (size_t)(s - 1) * nrows * ncols;
            for (int i = r0; i < r1; ++i) {
              float* c = Cc + (size_t)i * ldc;
              const float* q = Ps + (size_t)i * ncols;
#pragma omp simd
              for (int j = c0; j < c1; ++j) c[j] += q[j];
            }
          }
        });
      }
}

#else

bool cpu_has_avx512f() { return false; }
void sgemm_avx512(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int, bool) {}

#endif

const char* gemm_path() {
  // Read once: the path must not change under a running model. An explicit choice is never silently
  // replaced, so a test or benchmark run for one path really ran that path.
  static const char* path = [] {
    const char* env = std::getenv("ONEBIT_GEMM");
    const std::string want = env ? env : "";
    if (want.empty() || want == "auto") return cpu_has_avx512f() ? "avx512" : "openblas";
    if (want == "openblas") return "openblas";
    if (want == "avx512") {
      if (!cpu_has_avx512f()) fail("ONEBIT_GEMM=avx512, but this CPU (or OS) lacks AVX-512F; use openblas or auto");
      return "avx512";
    }
    fail("ONEBIT_GEMM=", printable(want), ": expected avx512, openblas or auto");
  }();
  return path;
}

bool sgemm_avx512_available() { return std::strcmp(gemm_path(), "avx512") == 0; }

}  // namespace onebit::kernels::cpu
