// The fast CPU kernels against the reference on fresh random inputs, at sizes that take both the
// serial and the OpenMP paths and that are not multiples of the vector width.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "test_seed.h"
#include "onebit/core/error.h"
#include "onebit/kernels/cpu/sgemm_avx512.h"
#include "onebit/kernels/cpu/thread_pool.h"
#include "onebit/kernels/cpu/vec_math.h"
#include "onebit/kernels/kernels.h"

namespace onebit::kernels {
namespace {

using testing::randint;
using testing::randn;
using Vec = std::vector<float>;

Ops<float>& fast() { return cpu_ops(); }
Ops<float>& ref() { return reference_ops<float>(); }

void expect_close(const Vec& a, const Vec& b, double rtol, double atol, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(a[i], b[i], atol + rtol * std::abs(b[i])) << what << "[" << i << "]";
}

uint64_t seed() {  // fresh inputs every run; the run's seed is printed on failure (test_seed.h)
  static uint64_t s = onebit::test::test_seed();
  return ++s;
}

// ctest runs this binary once per GEMM path (tests/CMakeLists.txt): the path it asked for must be the
// one that runs, never a silent fallback.
TEST(GemmPath, IsTheOneOnebitGemmSelects) {
  const char* env = std::getenv("ONEBIT_GEMM");
  if (!env) GTEST_SKIP() << "ONEBIT_GEMM is unset: the automatic path is " << cpu::gemm_path();
  EXPECT_STREQ(cpu::gemm_path(), env);
  EXPECT_EQ(cpu::sgemm_avx512_available(), std::string(env) == "avx512");
}

// Each case runs in a fresh process: the path is chosen once per process.
void expect_gemm_path_error(const char* value, const char* message) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("ONEBIT_GEMM", value, 1);
        try {
          cpu::gemm_path();
        } catch (const Error& e) {
          std::fprintf(stderr, "%s\n", e.what());
          std::exit(3);
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(3), message);
}

TEST(GemmPath, UnknownOrUnavailablePathIsAnError) {
  expect_gemm_path_error("blas", "ONEBIT_GEMM=blas: expected avx512, openblas or auto");
  if (!cpu::cpu_has_avx512f()) expect_gemm_path_error("avx512", "lacks AVX-512F");
}

class Sizes : public ::testing::TestWithParam<int> {};  // number of rows
INSTANTIATE_TEST_SUITE_P(Rows, Sizes, ::testing::Values(3, 37, 301));

TEST_P(Sizes, Gemm) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  const int M = GetParam(), N = 131, K = 67;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Vec A = randn<float>((size_t)M * K, s), B = randn<float>((size_t)K * N, s + 1);
      Vec C1 = randn<float>((size_t)M * N, s + 2), C2 = C1;
      const int lda = ta ? M : K, ldb = tb ? K : N;
      fast().gemm(ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.5f, C1.data(), N);
      ref().gemm(ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.5f, C2.data(), N);
      expect_close(C1, C2, 1e-5, 1e-4, "gemm");
    }
}

// Larger than one cache block in every dimension (the AVX-512 kernel blocks M by 192, N by 2048,
// K by 256), with beta = 0 over a C full of NaN (BLAS semantics: C is not read) and beta != 0.
TEST(FastVsReference, GemmAcrossCacheBlocks) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  const int M = 197, N = 2081, K = 260;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const float beta = ta == tb ? 0.0f : 0.5f;  // each transpose pair once, both beta paths
      Vec A = randn<float>((size_t)M * K, s + ta), B = randn<float>((size_t)K * N, s + 2 + tb);
      Vec C1 = randn<float>((size_t)M * N, s + 4), C2 = C1;
      if (beta == 0.0f) std::fill(C1.begin(), C1.end(), NAN);
      const int lda = ta ? M : K, ldb = tb ? K : N;
      fast().gemm(ta, tb, M, N, K, 1.3f, A.data(), lda, B.data(), ldb, beta, C1.data(), N);
      ref().gemm(ta, tb, M, N, K, 1.3f, A.data(), lda, B.data(), ldb, beta, C2.data(), N);
      expect_close(C1, C2, 1e-5, 2e-4, "gemm");
    }
}

TEST_P(Sizes, RMSNormFusedQuantAndBackward) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  const int N = GetParam(), C = 203;
  Vec x = randn<float>((size_t)N * C, s, 2.0), w = randn<float>(C, s + 1, 0.2, 1.0);
  Vec o1(x.size()), o2(x.size()), q1(x.size()), q2(x.size()), r1(N), r2(N);
  fast().rmsnorm_forward(o1.data(), q1.data(), r1.data(), x.data(), w.data(), N, C, 1e-6f);
  ref().rmsnorm_forward(o2.data(), nullptr, r2.data(), x.data(), w.data(), N, C, 1e-6f);
  expect_close(o1, o2, 2e-6, 1e-6, "rmsnorm out");
  expect_close(r1, r2, 2e-6, 0, "rstd");
  ref().act_quant_int8(q2.data(), o1.data(), N, C);  // the fused quantizer, on the same normed values
  expect_close(q1, q2, 0, 0, "fused act quant");
  Vec g = randn<float>(x.size(), s + 2), dx1 = randn<float>(x.size(), s + 3), dx2 = dx1, dw1(C, 0.5f), dw2 = dw1;
  fast().rmsnorm_backward(dx1.data(), dw1.data(), g.data(), x.data(), w.data(), r2.data(), N, C);
  ref().rmsnorm_backward(dx2.data(), dw2.data(), g.data(), x.data(), w.data(), r2.data(), N, C);
  expect_close(dx1, dx2, 1e-5, 1e-5, "dx");
  expect_close(dw1, dw2, 1e-5, 1e-4, "dw");
}

TEST_P(Sizes, ActQuantIsBitExact) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  const int N = GetParam(), C = 517;
  Vec x = randn<float>((size_t)N * C, s, 3.0), q1(x.size()), q2(x.size());
  for (int c = 0; c < C; ++c) x[c] = 0.0f;  // an all-zero row hits the 1e-5 floor
  fast().act_quant_int8(q1.data(), x.data(), N, C);
  ref().act_quant_int8(q2.data(), x.data(), N, C);
  expect_close(q1, q2, 0, 0, "act quant");
}

TEST(FastVsReference, WeightQuantizers) {
  for (size_t n : {size_t(1000), size_t(200003)}) {
    const uint64_t s = seed();
    SCOPED_TRACE(s);
    Vec w = randn<float>(n, s, 0.05, 0.003);
    for (WeightQuant q : {WeightQuant::Ternary, WeightQuant::Binary, WeightQuant::Int8, WeightQuant::BF16}) {
      QuantScale a, b;
      fast().weight_quant_scale(&a, w.data(), n, q);
      ref().weight_quant_scale(&b, w.data(), n, q);
      EXPECT_NEAR(a.scale, b.scale, 1e-6 * std::abs(b.scale));
      EXPECT_NEAR(a.center, b.center, 1e-6 * std::abs(b.scale));
      Vec o1(n), o2(n);
      fast().weight_quantize(o1.data(), w.data(), n, q, &b, 0.0f);
      ref().weight_quantize(o2.data(), w.data(), n, q, &b, 0.0f);
      expect_close(o1, o2, 0, 0, "hard weight quant");
      if (q == WeightQuant::Ternary || q == WeightQuant::Binary) {
        fast().weight_quantize(o1.data(), w.data(), n, q, &b, 5.0f);
        ref().weight_quantize(o2.data(), w.data(), n, q, &b, 5.0f);
        expect_close(o1, o2, 0, 2e-6 * b.scale, "soft weight quant");
        int64_t c1[3] = {0, 0, 0}, c2[3] = {0, 0, 0};
        fast().weight_code_counts(c1, w.data(), n, q, &b);
        ref().weight_code_counts(c2, w.data(), n, q, &b);
        for (int i = 0; i < 3; ++i) EXPECT_EQ(c1[i], c2[i]);
      }
    }
    // The BitNet (clamped) ternary scale: the same sum as the ternary one, without the added 1e-5.
    QuantScale a, b, plus;
    fast().ternary_scale_clamped(&a, w.data(), n);
    ref().ternary_scale_clamped(&b, w.data(), n);
    ref().weight_quant_scale(&plus, w.data(), n, WeightQuant::Ternary);
    EXPECT_NEAR(a.scale, b.scale, 1e-6 * std::abs(b.scale));
    EXPECT_NEAR(b.scale, plus.scale - 1e-5f, 1e-6 * std::abs(b.scale));
  }
}

// Values exactly at the rounding ties and signed zeros, where a vectorized rounding form could differ from
// clamp(roundeven(x)): the codes, the counts and the sign of every zero agree with the reference.
TEST(FastVsReference, QuantizersAtRoundingTiesAndSignedZeros) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  const size_t n = 40000;
  Vec w = randn<float>(n, s, 0.05, 0.0);
  QuantScale b;
  ref().weight_quant_scale(&b, w.data(), n, WeightQuant::Ternary);
  const float g = b.scale;
  const float special[] = {0.5f * g, -0.5f * g, 1.5f * g, -1.5f * g, std::nextafter(0.5f * g, 1.0f),
                           std::nextafter(-0.5f * g, -1.0f), std::nextafter(0.5f * g, 0.0f), -0.0f, 0.0f, -1e-30f,
                           1e-30f, -0.25f * g};
  for (size_t i = 0; i < std::size(special); ++i) w[i * 997] = special[i];  // spread over the chunks
  Vec o1(n), o2(n);
  fast().weight_quantize(o1.data(), w.data(), n, WeightQuant::Ternary, &b, 0.0f);
  ref().weight_quantize(o2.data(), w.data(), n, WeightQuant::Ternary, &b, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(o1[i], o2[i]) << "element " << i << " = " << w[i];
    ASSERT_EQ(std::signbit(o1[i]), std::signbit(o2[i])) << "element " << i << " = " << w[i];
  }
  int64_t c1[3] = {0, 0, 0}, c2[3] = {0, 0, 0};
  fast().weight_code_counts(c1, w.data(), n, WeightQuant::Ternary, &b);
  ref().weight_code_counts(c2, w.data(), n, WeightQuant::Ternary, &b);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c1[i], c2[i]) << "code " << i - 1;
  // Activations: a row whose absmax is 127 has step 1, so x.5 values are ties (round half to even).
  const int C = 64;
  Vec x = randn<float>((size_t)2 * C, s + 1, 20.0), q1(x.size()), q2(x.size());
  x[0] = 127.0f;
  const float ties[] = {2.5f, -3.5f, 0.5f, -0.5f, -0.0f, 126.5f, -127.0f, -0.2f};
  for (size_t i = 0; i < std::size(ties); ++i) x[1 + i] = ties[i];
  fast().act_quant_int8(q1.data(), x.data(), 2, C);
  ref().act_quant_int8(q2.data(), x.data(), 2, C);
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(q1[i], q2[i]) << "activation " << i << " = " << x[i];
    ASSERT_EQ(std::signbit(q1[i]), std::signbit(q2[i])) << "activation " << i << " = " << x[i];
  }
}

TEST(FastVsReference, RoPEForwardAndInverse) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  const int B = 3, T = 37, H = 5, hd = 34;
  Vec x = randn<float>((size_t)B * T * H * hd, s), cs(T * hd / 2), sn(T * hd / 2);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < hd / 2; ++i) {
      cs[t * hd / 2 + i] = std::cos(t * std::pow(10000.0f, -2.0f * i / hd));
      sn[t * hd / 2 + i] = std::sin(t * std::pow(10000.0f, -2.0f * i / hd));
    }
  for (bool inv : {false, true}) {
    Vec a = x, b = x;
    fast().rope(a.data(), cs.data(), sn.data(), B, T, H, hd, inv);
    ref().rope(b.data(), cs.data(), sn.data(), B, T, H, hd, inv);
    expect_close(a, b, 1e-6, 1e-6, "rope");
  }
}

// (B, T, H, KV, hd): odd T that are not multiples of the 64-row tile, GQA groups of 1, 2 and 4, head
// sizes 8 to 128.
class AttentionShapes : public ::testing::TestWithParam<std::tuple<int, int, int, int, int>> {};
INSTANTIATE_TEST_SUITE_P(Shapes, AttentionShapes,
                         ::testing::Values(std::make_tuple(2, 7, 4, 2, 8), std::make_tuple(2, 130, 4, 1, 16),
                                           std::make_tuple(1, 200, 3, 3, 24), std::make_tuple(2, 67, 4, 2, 64),
                                           std::make_tuple(1, 129, 2, 1, 128)));

// Without dropout and with attention dropout 0.3 (the same mask on both: kernels::dropout_factor).
TEST_P(AttentionShapes, ForwardAndBackward) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  auto [B, T, H, KV, hd] = GetParam();
  Vec q = randn<float>((size_t)B * T * H * hd, s), k = randn<float>((size_t)B * T * KV * hd, s + 1),
      v = randn<float>((size_t)B * T * KV * hd, s + 2), dy = randn<float>(q.size(), s + 3);
  for (const float p : {0.0f, 0.3f}) {
    SCOPED_TRACE(::testing::Message() << "dropout " << p);
    const uint64_t mask_seed = s + 4;
    Vec y1(q.size()), y2(q.size()), lse1((size_t)B * H * T), lse2(lse1.size());
    fast().attention_forward(y1.data(), lse1.data(), q.data(), k.data(), v.data(), B, T, H, KV, hd, p, mask_seed);
    ref().attention_forward(y2.data(), lse2.data(), q.data(), k.data(), v.data(), B, T, H, KV, hd, p, mask_seed);
    expect_close(y1, y2, 1e-5, 1e-5, "y");
    expect_close(lse1, lse2, 1e-6, 1e-5, "lse");
    // Both backwards get the reference's y and lse, so only the backward kernels are compared.
    Vec dq1(q.size()), dq2(q.size()), dk1(k.size()), dk2(k.size()), dv1(v.size()), dv2(v.size());
    fast().attention_backward(dq1.data(), dk1.data(), dv1.data(), dy.data(), q.data(), k.data(), v.data(),
                              y2.data(), lse2.data(), B, T, H, KV, hd, p, mask_seed);
    ref().attention_backward(dq2.data(), dk2.data(), dv2.data(), dy.data(), q.data(), k.data(), v.data(), y2.data(),
                             lse2.data(), B, T, H, KV, hd, p, mask_seed);
    expect_close(dq1, dq2, 1e-4, 1e-5, "dq");
    expect_close(dk1, dk2, 1e-4, 1e-5, "dk");
    expect_close(dv1, dv2, 1e-4, 1e-5, "dv");
  }
}

// Attention dropout against a naive f64 attention that materialises the scores, the probabilities
// and the [T, T] keep mask of every head, and takes the backward from the textbook formulas (dV =
// (P∘M)ᵀ dY, dP = M ∘ dY Vᵀ, dS = P ∘ (dP - rowsum(P ∘ dP)), no D = rowsum(dY ∘ Y) shortcut).
struct NaiveAttention {
  std::vector<double> y, dq, dk, dv;
  size_t kept = 0, visible = 0;  // mask statistics over the causal entries
};
NaiveAttention naive_dropout_attention(const std::vector<double>& q, const std::vector<double>& k,
                                       const std::vector<double>& v, const std::vector<double>& dy, int B, int T,
                                       int H, int KV, int hd, float p, uint64_t seed) {
  NaiveAttention r;
  r.y.assign(q.size(), 0.0), r.dq.assign(q.size(), 0.0), r.dk.assign(k.size(), 0.0), r.dv.assign(v.size(), 0.0);
  const double scale = 1.0 / std::sqrt((double)hd);
  std::vector<double> P((size_t)T * T), M((size_t)T * T), dP((size_t)T * T);
  auto at = [&](const std::vector<double>& x, int heads, int b, int t, int h) {
    return &x[(((size_t)b * T + t) * heads + h) * hd];
  };
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int kh = h / (H / KV);
      // The keep mask, drawn as documented: keep (i, j) iff dropout_factor != 0; value 1/(1-p).
      for (int i = 0; i < T; ++i)
        for (int j = 0; j < T; ++j) {
          const double u = dropout_factor(seed, (((uint64_t)b * H + h) * T + i) * T + j, p);
          M[(size_t)i * T + j] = u;
          if (j <= i) r.kept += u != 0.0, ++r.visible;
        }
      for (int i = 0; i < T; ++i) {
        double mx = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          double d = 0;
          for (int c = 0; c < hd; ++c) d += at(q, H, b, i, h)[c] * at(k, KV, b, j, kh)[c];
          P[(size_t)i * T + j] = d * scale;
          mx = std::max(mx, d * scale);
        }
        double sum = 0;
        for (int j = 0; j <= i; ++j) sum += std::exp(P[(size_t)i * T + j] - mx);
        for (int j = 0; j < T; ++j) P[(size_t)i * T + j] = j <= i ? std::exp(P[(size_t)i * T + j] - mx) / sum : 0.0;
      }
      for (int i = 0; i < T; ++i) {
        double* yi = const_cast<double*>(at(r.y, H, b, i, h));
        for (int j = 0; j <= i; ++j)
          for (int c = 0; c < hd; ++c) yi[c] += P[(size_t)i * T + j] * M[(size_t)i * T + j] * at(v, KV, b, j, kh)[c];
      }
      for (int i = 0; i < T; ++i) {
        double rs = 0;
        for (int j = 0; j <= i; ++j) {
          double d = 0;
          for (int c = 0; c < hd; ++c) d += at(dy, H, b, i, h)[c] * at(v, KV, b, j, kh)[c];
          dP[(size_t)i * T + j] = M[(size_t)i * T + j] * d;
          rs += P[(size_t)i * T + j] * dP[(size_t)i * T + j];
        }
        for (int j = 0; j <= i; ++j) {
          const double pij = P[(size_t)i * T + j], ds = pij * (dP[(size_t)i * T + j] - rs) * scale;
          for (int c = 0; c < hd; ++c) {
            const_cast<double*>(at(r.dv, KV, b, j, kh))[c] += pij * M[(size_t)i * T + j] * at(dy, H, b, i, h)[c];
            const_cast<double*>(at(r.dq, H, b, i, h))[c] += ds * at(k, KV, b, j, kh)[c];
            const_cast<double*>(at(r.dk, KV, b, j, kh))[c] += ds * at(q, H, b, i, h)[c];
          }
        }
      }
    }
  return r;
}

void expect_close_to(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << what << "[" << i << "]";
}

TEST(AttentionDropout, ReferenceAndFastMatchANaiveMaterialisedMask) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  const int B = 2, T = 37, H = 4, KV = 2, hd = 16;
  const float p = 0.2f;
  const uint64_t mask_seed = s * 31 + 7;
  Vec qf = randn<float>((size_t)B * T * H * hd, s), kf = randn<float>((size_t)B * T * KV * hd, s + 1),
      vf = randn<float>((size_t)B * T * KV * hd, s + 2), dyf = randn<float>(qf.size(), s + 3);
  const std::vector<double> q(qf.begin(), qf.end()), k(kf.begin(), kf.end()), v(vf.begin(), vf.end()),
      dy(dyf.begin(), dyf.end());
  const NaiveAttention want = naive_dropout_attention(q, k, v, dy, B, T, H, KV, hd, p, mask_seed);
  // The mask really drops about p of the entries (a wrong comparison would keep all or none).
  const double dropped = 1.0 - (double)want.kept / (double)want.visible;
  EXPECT_NEAR(dropped, p, 0.05) << want.visible << " causal entries";

  // The f64 reference backend, to f64 rounding.
  Ops<double>& ref64 = reference_ops<double>();
  std::vector<double> y(q.size()), lse((size_t)B * H * T), dq(q.size()), dk(k.size()), dv(v.size());
  ref64.attention_forward(y.data(), lse.data(), q.data(), k.data(), v.data(), B, T, H, KV, hd, p, mask_seed);
  ref64.attention_backward(dq.data(), dk.data(), dv.data(), dy.data(), q.data(), k.data(), v.data(), y.data(),
                           lse.data(), B, T, H, KV, hd, p, mask_seed);
  expect_close_to(y, want.y, 1e-12, "reference y");
  expect_close_to(dq, want.dq, 1e-11, "reference dq");
  expect_close_to(dk, want.dk, 1e-11, "reference dk");
  expect_close_to(dv, want.dv, 1e-11, "reference dv");

  // The fast f32 backend end to end (its own y and lse), to f32 accuracy.
  Vec yf(qf.size()), lsef((size_t)B * H * T), dqf(qf.size()), dkf(kf.size()), dvf(vf.size());
  fast().attention_forward(yf.data(), lsef.data(), qf.data(), kf.data(), vf.data(), B, T, H, KV, hd, p, mask_seed);
  fast().attention_backward(dqf.data(), dkf.data(), dvf.data(), dyf.data(), qf.data(), kf.data(), vf.data(),
                            yf.data(), lsef.data(), B, T, H, KV, hd, p, mask_seed);
  expect_close_to(std::vector<double>(yf.begin(), yf.end()), want.y, 2e-5, "fast y");
  expect_close_to(std::vector<double>(dqf.begin(), dqf.end()), want.dq, 1e-4, "fast dq");
  expect_close_to(std::vector<double>(dkf.begin(), dkf.end()), want.dk, 1e-4, "fast dk");
  expect_close_to(std::vector<double>(dvf.begin(), dvf.end()), want.dv, 1e-4, "fast dv");
}

// Exact resume needs bitwise-reproducible gradients; the fast attention gives the same bits at any
// thread count (each output has one writer that works in a fixed order).
TEST(FastVsReference, AttentionIsBitwiseTheSameAtAnyThreadCount) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  const int B = 2, T = 150, H = 4, KV = 2, hd = 32;
  Vec q = randn<float>((size_t)B * T * H * hd, s), k = randn<float>((size_t)B * T * KV * hd, s + 1),
      v = randn<float>((size_t)B * T * KV * hd, s + 2), dy = randn<float>(q.size(), s + 3);
  auto run = [&](int threads, float p) {
    fast().set_num_threads(threads);
    Vec y(q.size()), lse((size_t)B * H * T), dq(q.size()), dk(k.size()), dv(v.size());
    fast().attention_forward(y.data(), lse.data(), q.data(), k.data(), v.data(), B, T, H, KV, hd, p, s + 4);
    fast().attention_backward(dq.data(), dk.data(), dv.data(), dy.data(), q.data(), k.data(), v.data(), y.data(),
                              lse.data(), B, T, H, KV, hd, p, s + 4);
    return std::vector<Vec>{y, lse, dq, dk, dv};
  };
  const int before = cpu::pool_threads();
  for (const float p : {0.0f, 0.1f}) {  // without and with attention dropout
    const auto one = run(1, p);
    for (int threads : {2, 3, 5}) {
      const auto many = run(threads, p);
      for (size_t i = 0; i < one.size(); ++i)
        EXPECT_EQ(many[i], one[i]) << "output " << i << ", threads " << threads << ", dropout " << p;
    }
  }
  fast().set_num_threads(before);
}

// vexp (vec_math.h), under the softmax, attention and activation kernels: ~2 ulp against exp, the
// clamp and NaN behaviour, and the same bits whether gcc vectorizes the loop or not.
__attribute__((noinline, optimize("no-tree-vectorize"))) float vexp_scalar(float x) { return cpu::vexp(x); }

TEST(FastVsReference, VexpAgainstExp) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  Vec x = randn<float>(100000, s, 30.0);
  for (float e : {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -87.0f, 88.0f, -87.3f, 88.3f, -100.0f, 100.0f}) x.push_back(e);
  Vec y(x.size());
#pragma omp simd
  for (size_t i = 0; i < x.size(); ++i) y[i] = cpu::vexp(x[i]);
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(vexp_scalar(x[i]))) << "x=" << x[i];
    const double want = std::exp((double)std::clamp(x[i], -87.3f, 88.3f));
    ASSERT_NEAR(y[i], want, 3.6e-7 * want) << "x=" << x[i];
  }
  EXPECT_TRUE(std::isnan(cpu::vexp(NAN)));
  EXPECT_EQ(cpu::vexp(-INFINITY), cpu::vexp(-87.3f));
  EXPECT_EQ(cpu::vexp(INFINITY), cpu::vexp(88.3f));
}

// vmax / vmax_abs (vec_math.h), the max folds of cross-entropy, attention and the absmax quantizers:
// the value of the plain std::max fold at every length around the 32-lane blocks, with NaNs (skipped
// by both), infinities and the maximum in the tail or in a block.
TEST(FastVsReference, VmaxFoldsAreTheStdMaxFold) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  std::mt19937_64 g(s);
  for (size_t n : {size_t(0), size_t(1), size_t(31), size_t(32), size_t(33), size_t(64), size_t(95), size_t(32001)}) {
    for (int trial = 0; trial < 6; ++trial) {
      Vec x = randn<float>(n, s + 97 * n + trial, 10.0);
      if (n > 0 && trial == 1) x[g() % n] = NAN;
      if (n > 0 && trial == 2) x[n - 1] = 1000.0f;  // the maximum in the tail
      if (n > 0 && trial == 3) x[g() % n] = -INFINITY;
      if (n > 0 && trial == 4) x[g() % n] = INFINITY;
      if (n > 0 && trial == 5) x[0] = NAN;
      float want = -INFINITY, want_abs = 0.0f;
      for (float v : x) {
        want = std::max(want, v);
        want_abs = std::max(want_abs, std::fabs(v));
      }
      EXPECT_EQ(std::bit_cast<uint32_t>(cpu::vmax(x.data(), n, -INFINITY)), std::bit_cast<uint32_t>(want))
          << "n=" << n << " trial " << trial;
      EXPECT_EQ(std::bit_cast<uint32_t>(cpu::vmax_abs(x.data(), n, 0.0f)), std::bit_cast<uint32_t>(want_abs))
          << "n=" << n << " trial " << trial;
    }
  }
}

TEST(FastVsReference, GatedActivations) {
  for (size_t n : {size_t(77), size_t(100003)}) {
    const uint64_t s = seed();
    SCOPED_TRACE(s);
    Vec g = randn<float>(n, s, 4.0), u = randn<float>(n, s + 1), d = randn<float>(n, s + 2);
    g[0] = 100.0f;
    g[1] = -100.0f;  // saturated exp/tanh
    for (GatedAct act : {GatedAct::SwiGLU, GatedAct::ReLU2, GatedAct::GELU}) {
      // Against the f64 reference: f32 tanh-based formulas lose relative accuracy where tanh ~ -1.
      std::vector<double> G(g.begin(), g.end()), U(u.begin(), u.end()), D(d.begin(), d.end());
      std::vector<double> O(n), DG(n), DU(n);
      reference_ops<double>().gated_act_forward(O.data(), G.data(), U.data(), n, act);
      reference_ops<double>().gated_act_backward(DG.data(), DU.data(), D.data(), G.data(), U.data(), n, act);
      Vec o1(n), dg1(n), du1(n);
      fast().gated_act_forward(o1.data(), g.data(), u.data(), n, act);
      fast().gated_act_backward(dg1.data(), du1.data(), d.data(), g.data(), u.data(), n, act);
      expect_close(o1, Vec(O.begin(), O.end()), 1e-5, 1e-6, "act forward");
      // Derivatives cross zero (silu' at g ~ -1.28): cancellation there is absolute, not relative.
      expect_close(dg1, Vec(DG.begin(), DG.end()), 1e-5, 1e-6, "dgate");
      expect_close(du1, Vec(DU.begin(), DU.end()), 1e-5, 1e-6, "dup");
    }
  }
}

TEST(FastVsReference, ResidualWithDropout) {
  const size_t n = 70001;
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  Vec x = randn<float>(n, s), y = randn<float>(n, s + 1);
  for (float p : {0.0f, 0.2f}) {
    Vec o1(n), o2(n), d1(n), d2(n);
    fast().residual_forward(o1.data(), x.data(), y.data(), 0.8f, p, s, n);
    ref().residual_forward(o2.data(), x.data(), y.data(), 0.8f, p, s, n);
    expect_close(o1, o2, 0, 0, "residual");
    fast().residual_backward(d1.data(), y.data(), 0.8f, p, s, n);
    ref().residual_backward(d2.data(), y.data(), 0.8f, p, s, n);
    expect_close(d1, d2, 0, 0, "residual backward");
  }
}

TEST(FastVsReference, EmbeddingForwardAndBackward) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  const int V = 50, C = 301, N = 400;
  Vec table = randn<float>((size_t)V * C, s), g = randn<float>((size_t)N * C, s + 1);
  auto tok = randint(N, V, s + 2);
  Vec o1((size_t)N * C), o2(o1.size());
  fast().embedding_forward(o1.data(), tok.data(), table.data(), N, C, V);
  ref().embedding_forward(o2.data(), tok.data(), table.data(), N, C, V);
  expect_close(o1, o2, 0, 0, "embedding");
  Vec d1 = table, d2 = table;
  fast().embedding_backward(d1.data(), g.data(), tok.data(), N, C);
  ref().embedding_backward(d2.data(), g.data(), tok.data(), N, C);
  expect_close(d1, d2, 1e-6, 1e-5, "dtable");
  tok[5] = V;
  EXPECT_THROW(fast().embedding_forward(o1.data(), tok.data(), table.data(), N, C, V), std::exception);
  EXPECT_THROW(ref().embedding_forward(o2.data(), tok.data(), table.data(), N, C, V), std::exception);
  tok[5] = -1;
  EXPECT_THROW(fast().embedding_forward(o1.data(), tok.data(), table.data(), N, C, V), std::exception);
  EXPECT_THROW(ref().embedding_forward(o2.data(), tok.data(), table.data(), N, C, V), std::exception);
}

TEST_P(Sizes, CrossEntropy) {
  const uint64_t s = seed();
  SCOPED_TRACE(s);
  const int N = GetParam(), V = 1031;
  Vec logits = randn<float>((size_t)N * V, s, 3.0);
  auto tgt = randint(N, V, s + 1);
  tgt[0] = -1;
  Vec l1 = logits, l2 = logits, r1(N), r2(N);
  double s1 = 0, s2 = 0;
  fast().cross_entropy(l1.data(), r1.data(), &s1, tgt.data(), N, V, 0.25f, true);
  ref().cross_entropy(l2.data(), r2.data(), &s2, tgt.data(), N, V, 0.25f, true);
  EXPECT_NEAR(s1, s2, 1e-5 * std::abs(s2));
  expect_close(r1, r2, 1e-5, 1e-5, "row losses");
  expect_close(l1, l2, 1e-5, 1e-8, "dlogits");
}

}  // namespace
}  // namespace onebit::kernels
