// Fused weight quantization against reference.h. The scale is checked against the reference's f64
// reduction (relative 1e-6: both sum in f64, only the order differs, then one f32 rounding); the
// quantized values are checked against the reference quantizer applied with the GPU's scale, so the
// quantize pass itself is tested exactly: hard ternary / binary / int8 / bf16 must match bit for bit
// (the same correctly rounded f32 division, rint and product, then one bf16 rounding); the soft
// quantizers call tanhf, whose CUDA and glibc results may differ by 2 f32 ulp, so one bf16 ulp
// (plus 2^-21 of the scale where two tanh terms cancel).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cuda_test_util.h"
#include "onebit/kernels/cpu/reference.h"

namespace onebit::kernels::cuda {
namespace {

using namespace testing;

struct Case {
  WeightQuant q;
  float k;
};

const char* name(WeightQuant q) {
  switch (q) {
    case WeightQuant::None: return "none";
    case WeightQuant::Ternary: return "ternary";
    case WeightQuant::Binary: return "binary";
    case WeightQuant::Int8: return "int8";
    case WeightQuant::BF16: return "bf16";
  }
  return "?";
}

class WeightQuantSizes : public ::testing::TestWithParam<size_t> {};
// One element, less than a block, several partial blocks, and more than the 1024-partial cap.
INSTANTIATE_TEST_SUITE_P(Odd, WeightQuantSizes, ::testing::Values(size_t{1}, size_t{999}, size_t{300007},
                                                                  (size_t{1} << 21) + 17));

TEST_P(WeightQuantSizes, EveryQuantizerMatchesReference) {
  ONEBIT_REQUIRE_GPU();
  const size_t n = GetParam();
  Context ctx;
  const Case cases[] = {{WeightQuant::Ternary, 0}, {WeightQuant::Ternary, 7.5f}, {WeightQuant::Binary, 0},
                        {WeightQuant::Binary, 3.0f}, {WeightQuant::Int8, 0},     {WeightQuant::BF16, 0},
                        {WeightQuant::None, 0}};
  for (const auto& c : cases) {
    const uint64_t s = test_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << s << " " << name(c.q) << " k " << c.k << " n " << n);
    // A non-zero mean so the binary center matters.
    const auto w = randn(n, s, 0.02, c.q == WeightQuant::Binary ? 0.003 : 0.0);
    Dev<float> dw(n);
    dw.put(w);
    DevBf16 out(n);
    Dev<QuantScale> scale(1);
    Dev<int64_t> counts(3);
    const std::vector<int64_t> counts0{5, 6, 7};  // counts accumulate
    counts.put(counts0);
    weight_quantize(ctx, out.get(), scale.get(), counts.get(), dw.get(), n, c.q, c.k);
    const QuantScale gs = scale.take()[0];
    const QuantScale rs = ref::weight_quant_scale(w.data(), n, c.q);
    EXPECT_NEAR(gs.scale, rs.scale, 1e-6 * std::abs(rs.scale)) << "scale";
    EXPECT_NEAR(gs.center, rs.center, 1e-6 * std::abs(rs.scale) + 1e-12) << "center";
    std::vector<float> want(n);
    for (size_t i = 0; i < n; ++i) want[i] = ref::bf16_round(ref::quantize_one(w[i], c.q, gs, c.k));
    const auto got = out.take_f32();
    if (c.k > 0) {
      size_t bad = 0;
      // Near x = 0 the two soft-ternary tanh terms (each ~1) cancel, so their ulp errors count
      // against g, not against the small result: 2^-21 g absolute.
      const float slack = std::ldexp(gs.scale, -21);
      for (size_t i = 0; i < n; ++i) bad += !(std::abs(got[i] - want[i]) <= bf16_ulp(want[i]) + slack);
      EXPECT_EQ(bad, 0u) << "soft quantizer off by more than one bf16 ulp";
    } else {
      size_t bad = 0, first = 0;
      for (size_t i = 0; i < n; ++i)
        if (std::memcmp(&got[i], &want[i], 4) != 0 && bad++ == 0) first = i;
      EXPECT_EQ(bad, 0u) << "first [" << first << "] w " << w[first] << " got " << got[first] << " want "
                         << want[first];
    }
    std::vector<int64_t> want_counts = counts0;
    ref::weight_code_counts(w.data(), n, c.q, gs, want_counts.data());
    EXPECT_EQ(counts.take(), want_counts) << "code counts";
  }
}

// The model's batched path (weight_quantize_many: every ternary weight with its scale and code counts, every plain
// cast, a few launches for all) against the reference per tensor: ternary jobs hard and soft, clamped and not, casts,
// sizes that are and are not multiples of 4, and tensors that start 16-byte aligned (four weights a thread) or 4 bytes
// past it (element by element), as an arena's tensors and odd views do, and one whose weights are aligned but whose
// output is not (element by element too); more tensors than one launch holds; one tensor small enough that the 1e-5
// clamp decides its scale. Scales within 1e-6 of the f64 reference, hard values and the counts exact, soft values
// within a bf16 ulp (tanhf), casts exact, and the output between the tensors untouched.
TEST(CudaWeightQuant, ManyTensorsMatchTheReferencePerTensor) {
  ONEBIT_REQUIRE_GPU();
  Context ctx;
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  struct Spec {
    size_t n;
    bool ternary, clamped, misaligned;
    float k;
    int out_shift;  // the output this many bf16 past the weights' index (1: misaligned output only)
  };
  std::vector<Spec> specs{{589824, true, false, false, 0, 0},  {4099, true, true, true, 0, 0},
                          {1, true, false, false, 0, 0},       {300007, true, false, true, 0, 0},
                          {12288, true, false, false, 7.5f, 0}, {24576, false, false, false, 0, 0},
                          {777, false, false, true, 0, 0},      {65, true, true, false, 0, 0},
                          {1001, true, false, true, 3.0f, 0},  {4096, true, false, false, 0, 1},
                          {999, true, true, false, 0, 0}};
  const size_t tiny = specs.size() - 1;  // weights ~1e-6: the clamp sets the scale
  // More tensors than one launch takes (64), of sizes around the 4096 weights of one block: the flat grids'
  // block-to-tensor search across batches, tensors of one block and of several.
  for (int i = 0; i < 70; ++i)
    specs.push_back({(size_t)(1000 + 1531 * i % 9000), i % 5 != 4, i % 3 == 0, i % 7 == 3, i % 11 == 5 ? 2.0f : 0, 0});
  size_t total = 0;
  std::vector<size_t> at;
  for (const Spec& sp : specs) {
    total = (total + 15) / 16 * 16 + (sp.misaligned ? 1 : 0);  // 64-byte starts, or 4 bytes past one
    at.push_back(total);
    total += sp.n + 8;  // room for a shifted output, and a gap to check
  }
  auto w = randn(total, s, 0.02);
  for (size_t e = 0; e < specs[tiny].n; ++e) w[at[tiny] + e] *= 5e-5f;
  Dev<float> dw(total);
  dw.put(w);
  DevBf16 out(total + 8);
  const float sentinel = 7.0f;  // a value no job writes here (|q| <= 1.x for these weights)
  out.put_f32(std::vector<float>(total + 8, sentinel));
  Dev<QuantScale> scales(specs.size());
  Dev<int64_t> counts(3);
  const std::vector<int64_t> counts0{1, 2, 3};  // counts accumulate
  counts.put(counts0);
  std::vector<ManyQuantJob> jobs;
  for (size_t i = 0; i < specs.size(); ++i) {
    ManyQuantJob j;
    j.w = dw.get() + at[i];
    j.n = specs[i].n;
    j.q = specs[i].ternary ? WeightQuant::Ternary : WeightQuant::None;
    j.scale = scales.get() + i;
    j.with_scale = specs[i].ternary;
    j.clamped = specs[i].clamped;
    j.out = out.get() + at[i] + specs[i].out_shift;
    j.soft_k = specs[i].k;
    ASSERT_EQ(many_fast_kind(j), specs[i].ternary ? 1 : 2);
    jobs.push_back(j);
  }
  weight_quantize_many(ctx, jobs.data(), jobs.size(), counts.get());
  const auto got = out.take_f32();
  const auto gs = scales.take();
  std::vector<int64_t> want_counts = counts0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const Spec& sp = specs[i];
    SCOPED_TRACE(::testing::Message() << "tensor " << i << " n " << sp.n << (sp.misaligned ? " misaligned" : ""));
    const float* wi = w.data() + at[i];
    const WeightQuant q = sp.ternary ? WeightQuant::Ternary : WeightQuant::None;
    QuantScale used{};
    if (sp.ternary) {
      double a = 0;
      for (size_t e = 0; e < sp.n; ++e) a += std::abs((double)wi[e]);
      const double mean = a / (double)sp.n;
      const float want_scale = sp.clamped ? (float)std::max(mean, 1e-5) : (float)(mean + 1e-5);
      EXPECT_NEAR(gs[i].scale, want_scale, 1e-6 * want_scale) << "scale";
      used = gs[i];
      if (sp.k == 0) ref::weight_code_counts(wi, sp.n, q, used, want_counts.data());
    }
    if (i == tiny) {
      EXPECT_EQ(gs[i].scale, 1e-5f) << "the clamp";
    }
    size_t bad = 0;
    for (size_t e = 0; e < sp.n; ++e) {
      const float want = ref::bf16_round(ref::quantize_one(wi[e], q, used, sp.k));
      const float g = got[at[i] + sp.out_shift + e];
      bad += sp.k > 0 ? !(std::abs(g - want) <= bf16_ulp(want) + std::ldexp(used.scale, -21))
                      : std::memcmp(&g, &want, 4) != 0;
    }
    EXPECT_EQ(bad, 0u) << "effective weights";
  }
  std::vector<char> written(total + 8, 0);
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto first = written.begin() + (ptrdiff_t)(at[i] + specs[i].out_shift);
    std::fill(first, first + (ptrdiff_t)specs[i].n, 1);
  }
  size_t stray = 0;
  for (size_t e = 0; e < total + 8; ++e) stray += !written[e] && got[e] != sentinel;
  EXPECT_EQ(stray, 0u) << "output outside the tensors changed";
  // Soft jobs count too (their hard codes): add them after the hard ones' above.
  for (size_t i = 0; i < specs.size(); ++i)
    if (specs[i].ternary && specs[i].k > 0)
      ref::weight_code_counts(w.data() + at[i], specs[i].n, WeightQuant::Ternary, gs[i], want_counts.data());
  EXPECT_EQ(counts.take(), want_counts) << "code counts";
}

// The scale alone, with no output counts: a null counts pointer is allowed.
TEST(CudaWeightQuant, NullCountsAndMeanOfAbsolute) {
  ONEBIT_REQUIRE_GPU();
  Context ctx;
  const std::vector<float> w{0.5f, -1.5f, 0.0f, 2.0f};  // mean |w| = 1
  Dev<float> dw(4);
  dw.put(w);
  DevBf16 out(4);
  Dev<QuantScale> scale(1);
  weight_quantize(ctx, out.get(), scale.get(), nullptr, dw.get(), 4, WeightQuant::Ternary, 0);
  EXPECT_FLOAT_EQ(scale.take()[0].scale, 1.0f + 1e-5f);
  const auto got = out.take_f32();
  const float g = ref::bf16_round(1.0f + 1e-5f);
  EXPECT_EQ(got, (std::vector<float>{0.0f, -g, 0.0f, g}));  // 0.5/g rounds to 0 (ties to even below 0.5)
}

}  // namespace
}  // namespace onebit::kernels::cuda
