// CudaOps (kernels/cuda/cuda_ops.h) and the kernels it adds (ops_support.cu, the split weight
// quantizer) against the CPU reference and the fast CPU backend, on fresh random inputs of odd sizes.
// Tolerances: the embedding copies bf16 values exactly and sums at most a few f32 terms per element
// (1e-6 relative); the gradient norm is an f64 sum in another order (1e-12 relative); AdamW uses the
// CPU's formula with correctly rounded f32 operations (1e-6 relative: the CPU may contract to FMA);
// the quantizer's scale is an f64 reduction (1e-6 relative) and its codes are compared exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>

#include "cuda_test_util.h"
#include "onebit/kernels/cpu/reference.h"
#include "onebit/kernels/cuda/cuda_ops.h"

namespace onebit::kernels::cuda {
namespace {

using namespace testing;

CudaOps& ops() {
  static CudaOps* o = new CudaOps();  // lives for the process, like kernels::cuda_ops()
  return *o;
}
// The Dev buffers of cuda_test_util.h copy on the legacy default stream, which does not wait for
// CudaOps' own stream: every launch through ops() is followed by done() before its results are read.
void done() { ops().synchronize(); }

std::vector<int32_t> random_tokens(size_t n, int V, uint64_t seed) {
  std::mt19937_64 g(seed);
  // Few distinct ids, so most tokens repeat (the deterministic backward sums runs of them).
  std::uniform_int_distribution<int> d(0, std::min(V - 1, 9));
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(g) * (V / 10 > 0 ? V / 10 : 1) % V;
  return t;
}

// Zipf-like ids over the whole vocabulary: one id takes about a fifth of the rows (runs of hundreds,
// cut into many 64-row segments), many appear once.
std::vector<int32_t> skewed_tokens(size_t n, int V, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<double> wts(V);
  for (int v = 0; v < V; ++v) wts[v] = 1.0 / (1.0 + v);
  std::discrete_distribution<int> d(wts.begin(), wts.end());
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(g);
  return t;
}

class CudaEmbedding : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Ids, CudaEmbedding, ::testing::Values(false, true));

TEST_P(CudaEmbedding, ForwardAndDeterministicBackward) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  const bool skewed = GetParam();
  SCOPED_TRACE(::testing::Message() << "seed " << s << (skewed ? " skewed ids" : " few ids"));
  const int N = skewed ? 6007 : 1001, C = 77, V = skewed ? 301 : 53;
  const auto table = bf16_exact(randn((size_t)V * C, s));
  const auto dout = bf16_exact(randn((size_t)N * C, s + 1));
  const auto tok = skewed ? skewed_tokens(N, V, s + 2) : random_tokens(N, V, s + 2);
  DevBf16 dtab(table), dy(dout), out((size_t)N * C);
  Dev<int32_t> dtok(N);
  dtok.put(tok);
  ops().embedding_forward(out.get(), dtok.get(), dtab.get(), N, C, V);
  done();
  std::vector<float> want((size_t)N * C);
  ref::embedding_forward(want.data(), tok.data(), table.data(), N, C);
  expect_close(out.take_f32(), want, 0, 0, "embedding_forward");

  const auto g0 = randn((size_t)V * C, s + 3);
  Dev<float> dg((size_t)V * C);
  dg.put(g0);
  ops().embedding_backward(dg.get(), dy.get(), dtok.get(), N, C);
  done();
  std::vector<double> gw(g0.begin(), g0.end());
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) gw[(size_t)tok[n] * C + c] += dout[(size_t)n * C + c];
  const auto got = dg.take();
  expect_close(got, gw, 1e-5, 1e-5, "embedding_backward");
  // The same inputs give the same bits (no float atomics).
  dg.put(g0);
  ops().embedding_backward(dg.get(), dy.get(), dtok.get(), N, C);
  done();
  EXPECT_TRUE(got == dg.take()) << "embedding_backward is not deterministic";
}

TEST(CudaOps, GradNormClipFactorAndAdamWMatchTheCpuBackend) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  const size_t n = 200003;
  auto p = randn(n, s, 0.02), g = randn(n, s + 1, 0.5), m = randn(n, s + 2, 0.01), v = randn(n, s + 3, 0.01);
  for (auto& x : v) x = x * x;
  const std::vector<AdamWRange> ranges = {{0, 70001, true}, {70001, 3, false}, {70004, n - 70004, true}};
  Dev<float> dp(n), dgr(n), dm(n), dv(n), clip(1);
  Dev<double> nsq(1);
  dp.put(p), dgr.put(g), dm.put(m), dv.put(v);
  ops().grad_norm_sq(nsq.get(), dgr.get(), n);
  done();
  double want = 0;
  for (float x : g) want += (double)x * x;
  const double got = nsq.take()[0];
  EXPECT_NEAR(got, want, 1e-12 * want);
  ops().clip_factor(clip.get(), nsq.get(), 1e9);  // far above the norm: exactly 1
  EXPECT_EQ(clip.take()[0], 1.0f);
  const double max_norm = std::sqrt(want) / 3;
  ops().clip_factor(clip.get(), nsq.get(), max_norm);
  done();
  const float c = clip.take()[0];
  EXPECT_NEAR(c, max_norm / (std::sqrt(got) + 1e-6), 1e-7);

  AdamWHyper h;
  h.lr = 3e-3f, h.bias1 = 1 - 0.9f * 0.9f, h.bias2 = 1 - 0.95f * 0.95f;
  ops().adamw_step(dp.get(), dgr.get(), dm.get(), dv.get(), ranges.data(), ranges.size(), h, clip.get());
  done();
  std::vector<float> cp = p, cm = m, cv = v;
  cpu_ops().adamw_step(cp.data(), g.data(), cm.data(), cv.data(), ranges.data(), ranges.size(), h, &c);
  // Absolute floors: a few ulps of the update (lr 3e-3) and of m, where p*decay - update cancels.
  expect_close(dp.take(), cp, 1e-5, 1e-7, "adamw params");
  expect_close(dm.take(), cm, 1e-5, 2e-8, "adamw m");
  expect_close(dv.take(), cv, 1e-5, 1e-12, "adamw v");
}

TEST(CudaOps, SplitWeightQuantizerMatchesReference) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  const size_t n = 12345;
  const auto w = randn(n, s, 0.05, 0.003);
  Dev<float> dw(n);
  dw.put(w);
  Dev<QuantScale> scale(1);
  Dev<int64_t> counts(3);
  DevBf16 out(n);
  for (WeightQuant q : {WeightQuant::Ternary, WeightQuant::Binary, WeightQuant::Int8}) {
    SCOPED_TRACE(::testing::Message() << "quant " << (int)q);
    ops().weight_quant_scale(scale.get(), dw.get(), n, q);
    done();
    const QuantScale got = scale.take()[0], want = ref::weight_quant_scale(w.data(), n, q);
    EXPECT_NEAR(got.scale, want.scale, 1e-6 * std::abs(want.scale));
    EXPECT_NEAR(got.center, want.center, 1e-6 * std::abs(want.center) + 1e-12);
    ops().weight_quantize(out.get(), dw.get(), n, q, scale.get(), 0.0f);
    done();
    std::vector<float> eff(n);
    ref::weight_quantize(eff.data(), w.data(), n, q, got, 0.0f);
    for (auto& x : eff) x = ref::bf16_round(x);
    expect_close(out.take_f32(), eff, 0, 0, "hard quantized weight");
    counts.put({0, 0, 0});
    ops().weight_code_counts(counts.get(), dw.get(), n, q, scale.get());
    done();
    int64_t wc[3] = {0, 0, 0};
    if (q != WeightQuant::Int8) ref::weight_code_counts(w.data(), n, q, got, wc);
    const auto c = counts.take();
    EXPECT_EQ(c[0], wc[0]);
    EXPECT_EQ(c[1], wc[1]);
    EXPECT_EQ(c[2], wc[2]);
  }
}

TEST(CudaOps, ClampedTernaryScaleIsTransformersBitNetRule) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  for (double mag : {0.02, 1e-7}) {  // the second is all below the 1e-5 clamp
    const size_t n = 4099;
    const auto w = randn(n, s, mag);
    Dev<float> dw(n);
    dw.put(w);
    Dev<QuantScale> scale(1);
    ops().ternary_scale_clamped(scale.get(), dw.get(), n);
    done();
    const QuantScale want = ref::ternary_scale_clamped(w.data(), n);
    EXPECT_NEAR(scale.take()[0].scale, want.scale, 1e-6 * want.scale) << "magnitude " << mag;
  }
}

TEST(CudaOps, CrossEntropyAddsItsLossSumToTheF64Total) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  const int N = 37, V = 1001;
  const auto logits = bf16_exact(randn((size_t)N * V, s, 2.0));
  std::vector<int32_t> tgt(N);
  for (int i = 0; i < N; ++i) tgt[i] = (i * 97) % V;
  tgt[5] = -1;  // ignored
  DevBf16 dl(logits);
  Dev<float> losses(N);
  Dev<int32_t> dt(N);
  dt.put(tgt);
  Dev<double> total(1);
  total.put({10.0});
  ops().cross_entropy(dl.get(), losses.get(), total.get(), dt.get(), N, V, 1.0f, false);
  done();
  std::vector<float> lg = logits, rl(N);
  const double want = ref::cross_entropy(lg.data(), rl.data(), tgt.data(), N, V, 1.0f, false);
  EXPECT_NEAR(total.take()[0], 10.0 + want, 1e-4 * std::abs(want) + 1e-4);
}

// The attention entry points of the Ops interface (the kernels the process default
// ONEBIT_CUDA_ATTENTION selects) with attention dropout, against the fast CPU backend on the same
// bf16-exact inputs and the same mask: O within a bf16 rounding plus 8e-3, the gradients within 3% of
// the tensor's largest element and 1% relative Frobenius error (tests/cuda/attention_test.cpp says why).
TEST(CudaOps, AttentionWithDropoutMatchesTheCpuBackend) {
  ONEBIT_REQUIRE_GPU();
  const uint64_t s = test_seed();
  const int B = 2, T = 150, H = 4, KV = 2, hd = 64;
  const float p = 0.2f;
  SCOPED_TRACE(::testing::Message() << "seed " << s << " kernels "
                                    << attention_kernels_name(default_attention_kernels()));
  const size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd;
  const auto q = bf16_exact(randn(nq, s, 1.5)), k = bf16_exact(randn(nk, s + 1, 1.5));
  const auto v = bf16_exact(randn(nk, s + 2)), dy = bf16_exact(randn(nq, s + 3));
  DevBf16 dq_in(q), dk_in(k), dv_in(v), ddy(dy), o(nq), dq(nq), dk(nk), dv(nk);
  Dev<float> lse((size_t)B * H * T);
  ops().attention_forward(o.get(), lse.get(), dq_in.get(), dk_in.get(), dv_in.get(), B, T, H, KV, hd, p, s + 4);
  ops().attention_backward(dq.get(), dk.get(), dv.get(), ddy.get(), dq_in.get(), dk_in.get(), dv_in.get(), o.get(),
                           lse.get(), B, T, H, KV, hd, p, s + 4);
  done();
  Ops<float>& cpu = cpu_ops();
  std::vector<float> y(nq), ly((size_t)B * H * T), gq(nq), gk(nk), gv(nk);
  cpu.attention_forward(y.data(), ly.data(), q.data(), k.data(), v.data(), B, T, H, KV, hd, p, s + 4);
  cpu.attention_backward(gq.data(), gk.data(), gv.data(), dy.data(), q.data(), k.data(), v.data(), y.data(),
                         ly.data(), B, T, H, KV, hd, p, s + 4);
  expect_close(o.take_f32(), y, kBf16Rtol, 8e-3, "O");
  expect_close(lse.take(), ly, 0, 2e-4, "lse");
  auto check_grad = [](const std::vector<float>& got, const std::vector<float>& want, const char* what) {
    double mx = 0, num = 0, den = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      mx = std::max(mx, (double)std::abs(want[i]));
      num += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
      den += (double)want[i] * want[i];
    }
    expect_close(got, want, 1.0 / 128, 0.03 * mx + 1e-4, what);
    EXPECT_LE(std::sqrt(num / den), 0.01) << what << " relative Frobenius error";
  };
  check_grad(dq.take_f32(), gq, "dq");
  check_grad(dk.take_f32(), gk, "dk");
  check_grad(dv.take_f32(), gv, "dv");
}

// ternary_linear_forward_group on this backend's packs: one int8 product whose outputs are the members' own
// ternary_linear_forward products bit for bit, converting the members' codes itself; and false, with nothing
// written and nothing counted, where one launch cannot serve the group: packs not made one after another (out of
// order, or another between them), a boundary inside a 256-column tile, an input that is not the last quantization.
TEST(CudaOps, Int8GroupIsItsMembersProductsOrDeclines) {
  ONEBIT_REQUIRE_GPU();
  if (!int8_gemm_available()) GTEST_SKIP() << "no sm_90a code or not a compute capability 9.0 device";
  const ScopedEnv env({{"ONEBIT_CUDA_INT8_FORWARD", "1"}, {"ONEBIT_CUDA_INT8_GROUPS", "1"}});
  CudaOps o;
  const int N = 200, K = 256;
  const std::vector<int> outs = {512, 256, 264, 256};  // packed in this order
  const uint64_t s = test_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  // Hard ternary effective weights g t (bf16), each with its own scale.
  std::mt19937_64 gen(s);
  std::uniform_int_distribution<int> code(-1, 1);
  std::vector<std::unique_ptr<DevBf16>> w;
  std::vector<QuantScale> scale(outs.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    scale[i].scale = 0.02f + 0.01f * (float)i;
    std::vector<float> weff((size_t)outs[i] * K);
    for (auto& v : weff) v = to_float(to_bf16(scale[i].scale * (float)code(gen)));
    w.push_back(std::make_unique<DevBf16>(weff));
  }
  Dev<QuantScale> dscale(outs.size());
  dscale.put(scale);
  std::vector<std::unique_ptr<PackedTernary>> packs(outs.size());
  for (size_t i = 0; i < outs.size(); ++i)
    ASSERT_TRUE(o.pack_ternary(packs[i], w[i]->get(), outs[i], K, dscale.get() + i));
  DevBf16 x(bf16_exact(randn((size_t)N * K, s + 1))), xq((size_t)N * K);
  o.act_quant_int8(xq.get(), x.get(), N, K);  // the last quantization, whose codes the products read

  std::vector<std::unique_ptr<DevBf16>> got, want;
  for (int i = 0; i < 3; ++i) {
    got.push_back(std::make_unique<DevBf16>((size_t)N * outs[i]));
    want.push_back(std::make_unique<DevBf16>((size_t)N * outs[i]));
  }
  const int64_t products = o.int8_products();
  bf16* ys[3] = {got[0]->get(), got[1]->get(), got[2]->get()};
  const PackedTernary* first3[3] = {packs[0].get(), packs[1].get(), packs[2].get()};
  ASSERT_TRUE(o.ternary_linear_forward_group(ys, xq.get(), N, first3, 3));
  EXPECT_EQ(o.int8_products(), products + 1) << "one product for the group";
  for (int i = 0; i < 3; ++i) o.ternary_linear_forward(want[i]->get(), xq.get(), N, *packs[i]);
  o.synchronize();
  for (int i = 0; i < 3; ++i) {
    const auto a = got[i]->take(), b = want[i]->take();
    size_t differ = 0;
    for (size_t j = 0; j < a.size(); ++j) differ += a[j].bits != b[j].bits;
    EXPECT_EQ(differ, 0u) << "member " << i << " differs from its own product";
  }

  const int64_t before = o.int8_products(), fallbacks = o.int8_fallbacks();
  DevBf16 spare((size_t)N * 512), spare2((size_t)N * 512);  // zeros: a product written there leaves nonzeros
  bf16* two[2] = {spare.get(), spare2.get()};
  auto declines = [&](const PackedTernary* a, const PackedTernary* b, const bf16* in, const char* why) {
    const PackedTernary* pair[2] = {a, b};
    EXPECT_FALSE(o.ternary_linear_forward_group(two, in, N, pair, 2)) << why;
  };
  declines(packs[0].get(), packs[2].get(), xq.get(), "another pack between them");
  declines(packs[1].get(), packs[0].get(), xq.get(), "out of order");
  declines(packs[2].get(), packs[3].get(), xq.get(), "the first width, 264, ends inside a tile");
  declines(packs[0].get(), packs[1].get(), x.get(), "the input is not the last quantization");
  o.synchronize();
  EXPECT_EQ(o.int8_products(), before);
  EXPECT_EQ(o.int8_fallbacks(), fallbacks);
  for (const DevBf16* d : {&spare, &spare2}) {
    const auto v = d->take();
    EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](bf16 b) { return b.bits == 0; })) << "a declined group wrote";
  }
}

TEST(CudaOps, CountsWhatItHolds) {
  ONEBIT_REQUIRE_GPU();
  const size_t before = ops().allocated_bytes();
  void* p = ops().alloc_bytes(size_t{3} << 20);
  EXPECT_EQ(ops().allocated_bytes(), before + (size_t{3} << 20));
  EXPECT_GE(ops().peak_allocated_bytes(), ops().allocated_bytes());
  ops().free_bytes(p);
  EXPECT_EQ(ops().allocated_bytes(), before);
}

}  // namespace
}  // namespace onebit::kernels::cuda
