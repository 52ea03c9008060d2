// Flash attention forward and backward against the f64 reference (which materialises the
// probabilities) on bf16-exact q/k/v: causal, GQA, head_dim 64 and 128 (tensor cores) and other head
// dims (the generic kernel), sequence lengths that are not multiples of the 64-row tile. Tolerances: scores are bf16 products summed in f32 (exact up to
// ~1e-6), but the probabilities enter the P·V, dS·K, Pᵀ·dO products rounded to bf16 (2^-9 each),
// and outputs are rounded to bf16: O within 2^-8 relative + 8e-3 absolute (2^-9 of a dominant p times |v| <= 4); the
// gradients within 3% of the tensor's largest element (+1e-4) and 1% relative Frobenius error. A mask,
// tile or head-mapping mistake is O(1). The log-sum-exp is f32 (2e-4 absolute).
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <cmath>

#include "cuda_test_util.h"
#include "onebit/core/error.h"
#include "onebit/kernels/cpu/reference.h"

namespace onebit::kernels::cuda {

// Test names print the generation (v1 .. v4, auto): googletest finds a parameter's PrintTo by argument-
// dependent lookup, so it lives in the enum's own namespace, not the unnamed one below (where it went
// unused and the names read "4-byte object <00-00 00-00>").
void PrintTo(AttentionKernels k, std::ostream* os) { *os << attention_kernels_name(k); }

namespace {

using namespace testing;

struct Shape {
  int B, T, H, KV, hd;
};
// Printed in test names (ctest -R can select a shape).
std::ostream& operator<<(std::ostream& os, const Shape& s) {
  return os << "B" << s.B << "_T" << s.T << "_H" << s.H << "_KV" << s.KV << "_hd" << s.hd;
}
// Every generation of the tensor-core kernels runs every shape (ONEBIT_CUDA_ATTENTION picks one at run
// time; the others must stay correct). Named v1 .. v4 in the test names (PrintTo above); v4 is v3 (with
// v2's forward) where Hopper's wgmma is unavailable.
class AttentionShapes : public ::testing::TestWithParam<std::tuple<Shape, AttentionKernels>> {};
const auto kAllVersions =
    ::testing::Values(AttentionKernels::V1, AttentionKernels::V2, AttentionKernels::V3, AttentionKernels::V4);
// T not a multiple of the 64-row (v1) or 128-row (v2) tiles, GQA groups of 1 to 4, several v2 query
// blocks and dK/dV key blocks (T 300, 257) with partial last tiles.
INSTANTIATE_TEST_SUITE_P(Odd, AttentionShapes,
                         ::testing::Combine(::testing::Values(Shape{1, 1, 1, 1, 64}, Shape{2, 17, 4, 2, 64},
                                                              Shape{1, 64, 2, 2, 64}, Shape{2, 100, 6, 3, 64},
                                                              Shape{1, 300, 4, 1, 64}, Shape{1, 131, 4, 1, 128},
                                                              Shape{2, 200, 2, 2, 128}, Shape{1, 257, 2, 1, 128}),
                                            kAllVersions));
// Head dims without a tensor-core kernel take the generic warp-per-row path (tiny preset: 48) whatever
// the version.
INSTANTIATE_TEST_SUITE_P(GenericHeadDim, AttentionShapes,
                         ::testing::Combine(::testing::Values(Shape{2, 33, 4, 2, 48}, Shape{1, 70, 2, 1, 16},
                                                              Shape{1, 20, 3, 3, 80}, Shape{1, 9, 2, 2, 256},
                                                              Shape{1, 23, 2, 1, 12}),  // dv rows of 12
                                            ::testing::Values(AttentionKernels::V2)));

// cancel: an absolute allowance for dS = P * (dP - D), where D comes from the bf16-rounded O: with
// dropout O = 1.25 * P V is rounded (without it, at T = 1, O = V exactly), so dP - D keeps up to
// 2^-8 of sum |dO * O| where the exact value cancels to 0 (T = 1: dq = dk = 0).
void check_grad(const std::vector<float>& got, const std::vector<double>& want, const char* what, double cancel = 0) {
  double mx = 0, num = 0, den = 0;
  for (double w : want) mx = std::max(mx, std::abs(w));
  for (size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  expect_close(got, want, 1.0 / 128, 0.03 * mx + 1e-4 + cancel, what);
  // T = 1 has dq = dk = 0 exactly (dS = dP - D cancels), the GPU's up to f32 summation order: only
  // the absolute bound applies there.
  if (den > 1e-12) {
    EXPECT_LE(std::sqrt(num / den), 0.01) << what << " relative Frobenius error";
  }
}

void forward_and_backward_match_reference(const Shape& shape, AttentionKernels version, float p) {
  const auto [B, T, H, KV, hd] = shape;
  const uint64_t s = test_seed(), mask_seed = s ^ 0xD0D0;
  SCOPED_TRACE(::testing::Message() << "seed " << s << " B " << B << " T " << T << " H " << H << " KV " << KV
                                    << " hd " << hd << " dropout " << p << " kernels "
                                    << attention_kernels_name(version));
  const size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd;
  const auto q = bf16_exact(randn(nq, s, 1.5)), k = bf16_exact(randn(nk, s + 1, 1.5));
  const auto v = bf16_exact(randn(nk, s + 2)), dy = bf16_exact(randn(nq, s + 3));
  Context ctx;
  DevBf16 dq_in(q), dk_in(k), dv_in(v), ddy(dy), o(nq), dq(nq), dk(nk), dv(nk);
  Dev<float> lse((size_t)B * H * T);
  attention_forward(ctx, o.get(), lse.get(), dq_in.get(), dk_in.get(), dv_in.get(), B, T, H, KV, hd, p, mask_seed,
                    version);
  attention_backward(ctx, dq.get(), dk.get(), dv.get(), ddy.get(), dq_in.get(), dk_in.get(), dv_in.get(), o.get(),
                     lse.get(), B, T, H, KV, hd, p, mask_seed, version);

  // Deterministic (no atomics): a second backward gives the same bits, as exact resume needs.
  {
    DevBf16 dq2(nq), dk2(nk), dv2(nk);
    attention_backward(ctx, dq2.get(), dk2.get(), dv2.get(), ddy.get(), dq_in.get(), dk_in.get(), dv_in.get(),
                       o.get(), lse.get(), B, T, H, KV, hd, p, mask_seed, version);
    EXPECT_EQ(dq2.take_f32(), dq.take_f32());
    EXPECT_EQ(dk2.take_f32(), dk.take_f32());
    EXPECT_EQ(dv2.take_f32(), dv.take_f32());
  }
  std::vector<double> qd(q.begin(), q.end()), kd(k.begin(), k.end()), vd(v.begin(), v.end()), dyd(dy.begin(), dy.end());
  std::vector<double> y(nq), ref_lse((size_t)B * H * T), gq(nq), gk(nk), gv(nk);
  ref::attention_forward<double>(y.data(), ref_lse.data(), qd.data(), kd.data(), vd.data(), B, T, H, KV, hd, p,
                                 mask_seed);
  ref::attention_backward<double>(gq.data(), gk.data(), gv.data(), dyd.data(), qd.data(), kd.data(), vd.data(),
                                  y.data(), ref_lse.data(), B, T, H, KV, hd, p, mask_seed);
  expect_close(o.take_f32(), y, kBf16Rtol, 8e-3, "O");
  expect_close(lse.take(), ref_lse, 0, 2e-4, "lse");
  double dsum = 0, qmax = 0, kmax = 0;  // largest row sum of |dO * O|, largest |q|, |k|
  for (size_t r = 0; r < nq / hd; ++r) {
    double t = 0;
    for (int c = 0; c < hd; ++c) t += std::abs(dyd[r * hd + c] * y[r * hd + c]);
    dsum = std::max(dsum, t);
  }
  for (double x : qd) qmax = std::max(qmax, std::abs(x));
  for (double x : kd) kmax = std::max(kmax, std::abs(x));
  const double cancel = p > 0 ? dsum / 256 / std::sqrt((double)hd) : 0.0;
  check_grad(dq.take_f32(), gq, "dq", cancel * kmax);
  check_grad(dk.take_f32(), gk, "dk", cancel * qmax);
  check_grad(dv.take_f32(), gv, "dv");
}

TEST_P(AttentionShapes, ForwardAndBackwardMatchReference) {
  ONEBIT_REQUIRE_GPU();
  forward_and_backward_match_reference(std::get<0>(GetParam()), std::get<1>(GetParam()), 0.0f);
}

// Attention dropout: the same mask as the CPU (kernels::dropout_factor on ((b*H + h)*T + i)*T + j), so
// the reference with the same p and seed is the whole check; 1/(1-p) = 1.25 is exact in bf16.
TEST_P(AttentionShapes, ForwardAndBackwardWithDropoutMatchReference) {
  ONEBIT_REQUIRE_GPU();
  forward_and_backward_match_reference(std::get<0>(GetParam()), std::get<1>(GetParam()), 0.2f);
}

// Random bf16-exact q/k/v and upstream gradient for one shape, and the five outputs (O, lse, dq, dk,
// dv) of one forward and backward with given kernels in a fresh context (a fresh scratch, as v3's dS
// chunking assumes below).
struct AttentionInputs {
  int B, T, H, KV, hd;
  uint64_t seed;
  size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd;
  DevBf16 q{bf16_exact(randn(nq, seed, 1.5))}, k{bf16_exact(randn(nk, seed + 1, 1.5))};
  DevBf16 v{bf16_exact(randn(nk, seed + 2))}, dy{bf16_exact(randn(nq, seed + 3))};

  std::vector<std::vector<float>> run(AttentionKernels version, float p) const { return run(version, version, p); }
  std::vector<std::vector<float>> run(AttentionKernels forward, AttentionKernels backward, float p) const {
    Context ctx;
    DevBf16 o(nq), dq(nq), dk(nk), dv(nk);
    Dev<float> lse((size_t)B * H * T);
    attention_forward(ctx, o.get(), lse.get(), q.get(), k.get(), v.get(), B, T, H, KV, hd, p, seed, forward);
    attention_backward(ctx, dq.get(), dk.get(), dv.get(), dy.get(), q.get(), k.get(), v.get(), o.get(), lse.get(), B,
                       T, H, KV, hd, p, seed, backward);
    return {o.take_f32(), lse.take(), dq.take_f32(), dk.take_f32(), dv.take_f32()};
  }
};

// v1 .. v4 compute the same function with the same bf16 roundings of P and dS but different tile
// orders (the online softmax rescales at other points): their outputs agree far closer than any does
// with the f64 reference, so a slip that the reference tolerance would absorb still shows here. At 16
// heads and T 1024 one batch row's dS is 17.8 MB: 8 rows (142 MB) outgrow the v3/v4 minimum dS budget
// in a fresh context (128 MiB), so they run the batch in two chunks (7 + 1 rows) and the chunk offsets
// (b0: inputs, outputs and the dropout mask's index) are checked too. Without dropout v4's forward is its
// own kernel (TMA, 128-key tiles over several persistent work items per block), so both cases run.
TEST(CudaAttention, AllVersionsAgreeWithV1AtTheTrainingShape) {
  ONEBIT_REQUIRE_GPU();
  const AttentionInputs in{8, 1024, 16, 8, 64, test_seed()};
  const AttentionKernels versions[] = {AttentionKernels::V1, AttentionKernels::V2, AttentionKernels::V3,
                                       AttentionKernels::V4};
  for (const float p : {0.1f, 0.0f}) {
    SCOPED_TRACE(::testing::Message() << "seed " << in.seed << " dropout " << p);
    std::vector<std::vector<float>> out[4];
    for (int i = 0; i < 4; ++i) out[i] = in.run(versions[i], p);
    const char* names[] = {"O", "lse", "dq", "dk", "dv"};
    for (int v = 1; v < 4; ++v)
      for (int t = 0; t < 5; ++t) {
        double num = 0, den = 0;
        for (size_t i = 0; i < out[0][t].size(); ++i) {
          const double d = (double)out[v][t][i] - out[0][t][i];
          num += d * d, den += (double)out[0][t][i] * out[0][t][i];
        }
        EXPECT_LE(std::sqrt(num / std::max(den, 1e-30)), 4e-3)
            << names[t] << " relative Frobenius difference " << attention_kernels_name(versions[v]) << " - v1";
      }
  }
}

// The default (Auto), bit for bit: v4's forward (v2's with dropout, at head_dim 128 or without Hopper); the
// backward v3's with attention dropout, else v4's where its TMA dK/dV pass runs (head_dim 64, T % 4 == 0,
// Hopper), else v2's (v4's fallback there is v3's structure, slower without dropout).
TEST(CudaAttention, AutoPicksTheFastestKernelsForEachCase) {
  ONEBIT_REQUIRE_GPU();
  for (const auto& [hd, T] : {std::pair{64, 200}, std::pair{64, 201}, std::pair{128, 200}}) {
    const AttentionInputs in{2, T, 4, 2, hd, test_seed()};
    SCOPED_TRACE(::testing::Message() << "seed " << in.seed << " hd " << hd << " T " << T);
    const bool tma_dkdv = hd == 64 && T % 4 == 0 && attention_wgmma_available();
    for (float p : {0.0f, 0.2f}) {
      const auto got = in.run(AttentionKernels::Auto, p);
      const auto backward = p > 0 ? AttentionKernels::V3 : tma_dkdv ? AttentionKernels::V4 : AttentionKernels::V2;
      const auto want = in.run(AttentionKernels::V4, backward, p);
      for (int t = 0; t < 5; ++t) EXPECT_EQ(got[t], want[t]) << "output " << t << " dropout " << p;
    }
  }
}

TEST(CudaAttention, VersionComesFromTheEnvironmentVariable) {
  EXPECT_EQ(attention_kernels_from(nullptr), AttentionKernels::Auto);
  EXPECT_EQ(attention_kernels_from(""), AttentionKernels::Auto);
  EXPECT_EQ(attention_kernels_from("auto"), AttentionKernels::Auto);
  EXPECT_EQ(attention_kernels_from("v2"), AttentionKernels::V2);
  EXPECT_EQ(attention_kernels_from("v1"), AttentionKernels::V1);
  EXPECT_EQ(attention_kernels_from("v3"), AttentionKernels::V3);
  EXPECT_EQ(attention_kernels_from("v4"), AttentionKernels::V4);
  try {
    attention_kernels_from("V3\n");
    ADD_FAILURE() << "no error for an unknown version";
  } catch (const ::onebit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ONEBIT_CUDA_ATTENTION"), std::string::npos) << e.what();
  }
}

// dv written at a row stride (the fused Q/K/V gradient's last column block): every generation, with
// and without dropout, and the generic kernels (head_dim 48) write the same bits as the contiguous
// call into the block and nothing outside it (the other columns keep a planted NaN pattern).
// T 204 as well at head_dim 64: v4's TMA dK/dV pass runs where T % 4 == 0 (203 takes v3's structure).
TEST(CudaAttention, StridedDvIsTheContiguousDvInItsColumnBlock) {
  ONEBIT_REQUIRE_GPU();
  for (const auto& [hd, T] : {std::pair{64, 203}, std::pair{64, 204}, std::pair{128, 203}, std::pair{48, 203}}) {
    const AttentionInputs in{2, T, 4, 2, hd, test_seed() + (uint64_t)hd};
    const int w = in.KV * hd, ld = w + 3 * 8, rows = in.B * in.T;
    const AttentionKernels versions[] = {AttentionKernels::V1, AttentionKernels::V2, AttentionKernels::V3,
                                         AttentionKernels::V4};
    for (const AttentionKernels version : versions) {
      if (hd == 48 && version != AttentionKernels::V2) continue;  // one generic kernel for every version
      for (const float p : {0.0f, 0.15f}) {
        SCOPED_TRACE(::testing::Message() << "seed " << in.seed << " hd " << hd << " T " << T << " "
                                          << attention_kernels_name(version) << " dropout " << p);
        const auto want = in.run(version, p);
        Context ctx;
        DevBf16 o(in.nq), dq(in.nq), dk(in.nk), dv_wide((size_t)rows * ld);
        Dev<float> lse((size_t)in.B * in.H * in.T);
        const std::vector<bf16> planted((size_t)rows * ld, bf16{0x7fc1});  // a NaN bit pattern
        dv_wide.put(planted);
        attention_forward(ctx, o.get(), lse.get(), in.q.get(), in.k.get(), in.v.get(), in.B, in.T, in.H, in.KV, hd, p,
                          in.seed, version);
        attention_backward(ctx, dq.get(), dk.get(), dv_wide.get() + 16, in.dy.get(), in.q.get(), in.k.get(),
                           in.v.get(), o.get(), lse.get(), in.B, in.T, in.H, in.KV, hd, p, in.seed, version, ld);
        EXPECT_EQ(dq.take_f32(), want[2]);
        EXPECT_EQ(dk.take_f32(), want[3]);
        const auto wide = dv_wide.take();
        size_t bad = 0;
        for (int r = 0; r < rows; ++r)
          for (int c = 0; c < ld; ++c) {
            const bf16 got = wide[(size_t)r * ld + c];
            const bool inside = c >= 16 && c < 16 + w;
            const bool ok = inside ? to_float(got) == want[4][(size_t)r * w + c - 16] : got.bits == 0x7fc1;
            bad += !ok;
          }
        EXPECT_EQ(bad, 0u) << "elements of the strided dv that differ from the contiguous call or were written "
                              "outside the block";
      }
    }
  }
}

TEST(CudaAttention, RejectsHeadDimsAboveTheGenericLimit) {
  ONEBIT_REQUIRE_GPU();
  Context ctx;
  DevBf16 x(512);
  Dev<float> lse(1);
  EXPECT_THROW(attention_forward(ctx, x.get(), lse.get(), x.get(), x.get(), x.get(), 1, 1, 1, 1, 512, 0.0f, 0),
               ::onebit::Error);
}

}  // namespace
}  // namespace onebit::kernels::cuda
