// Goto-style SGEMM: per K block, op(B) is packed into KC x NR column panels and op(A) into KC x MR row
// panels (both shared by the threads), then tasks of MC rows x a group of B panels run a 12x32 register
// tile of 24 zmm accumulators (the B panel stays in L1 across an MC block, the A block in L2). Edges are zero-padded in
// the packs and written back with masked stores. Summation order depends only on the shapes, so results are
// deterministic.
#include "onebit/kernels/cpu/sgemm_avx512.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/kernels/cpu/thread_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace onebit::kernels::cpu {

#if defined(__x86_64__)
namespace {

constexpr int MR = 12, NR = 32, KC = 256, MC = 192, NC = 2048;

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

// One MR-row micro-panel of op(A)[i0:i0+mr, p0:p0+kc], stored k-major ([k][MR]), zero-padded.
void pack_a_panel(bool ta, const float* A, int lda, int i0, int mr, int p0, int kc, float* Ap) {
  if (ta) {
    for (int k = 0; k < kc; ++k) {
      const float* src = A + (size_t)(p0 + k) * lda + i0;
      for (int r = 0; r < MR; ++r) Ap[(size_t)k * MR + r] = r < mr ? src[r] : 0.0f;
    }
  } else {
    for (int r = 0; r < MR; ++r) {
      const float* src = A + (size_t)(i0 + r) * lda + p0;
      if (r < mr)
        for (int k = 0; k < kc; ++k) Ap[(size_t)k * MR + r] = src[k];
      else
        for (int k = 0; k < kc; ++k) Ap[(size_t)k * MR + r] = 0.0f;
    }
  }
}

// One NR-column micro-panel of op(B)[p0:p0+kc, j0:j0+nr] ([k][NR]), zero-padded.
void pack_b_panel(bool tb, const float* B, int ldb, int p0, int kc, int j0, int nr, float* Bp) {
  if (tb) {
    // Column j of op(B) is row j of B: read each along k (one stream), scatter into the panel.
    for (int c = 0; c < NR; ++c) {
      const float* src = B + (size_t)(j0 + c) * ldb + p0;
      if (c < nr)
        for (int k = 0; k < kc; ++k) Bp[(size_t)k * NR + c] = src[k];
      else
        for (int k = 0; k < kc; ++k) Bp[(size_t)k * NR + c] = 0.0f;
    }
  } else {
    for (int k = 0; k < kc; ++k) {
      std::memcpy(Bp + (size_t)k * NR, B + (size_t)(p0 + k) * ldb + j0, nr * sizeof(float));
      std::fill(Bp + (size_t)k * NR + nr, Bp + (size_t)(k + 1) * NR, 0.0f);
    }
  }
}

float* aligned(std::vector<float>& v, size_t n) {
  v.resize(n + 16);
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t(63));
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
  // Both packs are shared by all threads: op(A)[:, p0:p0+kc] whole (M x KC) and op(B) one NC block.
  static thread_local std::vector<float> abuf, bbuf;
  // K in equal blocks of about KC (at most 1.5 KC): a short last block would cost one more pass over
  // all of C for little work (the LM head's weight gradient has K = 262 rows per logits chunk).
  const int kblocks = std::max(1, (K + KC / 2) / KC), kcmax = (K + kblocks - 1) / kblocks;
  const int mpanels = (M + MR - 1) / MR;
  float* Ap = aligned(abuf, (size_t)mpanels * MR * kcmax);
  float* Bp = aligned(bbuf, (size_t)(NC + NR) * kcmax);
  auto run = [&](int64_t n, auto&& f) {
    if (parallel)
      parallel_for(n, f);
    else
      for (int64_t i = 0; i < n; ++i) f(i);
  };
  const int mblocks = (M + MC - 1) / MC;
  for (int j0 = 0; j0 < N; j0 += NC) {
    const int nc = std::min(NC, N - j0), npanels = (nc + NR - 1) / NR;
    // Tasks are (MC-row block) x (group of B panels): a few per thread, each C tile in exactly one task,
    // so the result does not depend on which thread ran what.
    const int jgroups = parallel ? std::clamp((8 * pool_threads() + mblocks - 1) / mblocks, 1, npanels) : 1;
    for (int p0 = 0; p0 < K; p0 += kcmax) {
      const int kc = std::min(kcmax, K - p0);
      const float beta_eff = p0 == 0 ? beta : 1.0f;
      run(npanels, [&](int64_t jp) {
        pack_b_panel(tb, B, ldb, p0, kc, j0 + (int)jp * NR, std::min(NR, nc - (int)jp * NR), Bp + jp * kc * NR);
      });
      run(mpanels, [&](int64_t ip) {
        pack_a_panel(ta, A, lda, (int)ip * MR, std::min(MR, M - (int)ip * MR), p0, kc, Ap + ip * kc * MR);
      });
      run((int64_t)mblocks * jgroups, [&](int64_t t) {
        const int ib0 = (int)(t / jgroups) * MC, g = (int)(t % jgroups);
        const int ib1 = std::min(M, ib0 + MC);
        for (int jp = npanels * g / jgroups; jp < npanels * (g + 1) / jgroups; ++jp)
          for (int i = ib0; i < ib1; i += MR)
            kernel_12x32(kc, Ap + (size_t)(i / MR) * kc * MR, Bp + (size_t)jp * kc * NR,
                        C + (size_t)i * ldc + j0 + jp * NR, ldc, alpha, beta_eff, std::min(MR, M - i),
                        std::min(NR, nc - jp * NR));
      });
    }
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
