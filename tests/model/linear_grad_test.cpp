// The linear layers and the fused LM head exactly as Network runs them (model/linear.h): gradients
// against central finite differences in f64 on the reference kernels, and the fast CPU backend the
// trainer uses against the reference on the same inputs. Inputs are fresh on every run (test_seed.h).
#include "onebit/model/linear.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "finite_difference.h"
#include "onebit/core/rng.h"
#include "onebit/kernels/kernels.h"
#include "test_seed.h"

namespace onebit::model {
namespace {

using kernels::WeightQuant;
using onebit::test::dot;
using onebit::test::expect_fd;
using onebit::test::test_seed;
using Vec = std::vector<double>;

kernels::Ops<double>& ref() { return kernels::reference_ops<double>(); }

Vec randn(size_t n, Rng& rng, double scale = 1.0) {
  Vec v(n);
  for (double& x : v) x = scale * rng.normal();
  return v;
}

// BitLinear: y = aq(x) · wq(W)ᵀ, and the STE backward dx = dy · wq(W), dW = dyᵀ · aq(x), is the exact
// gradient of the surrogate y = (x + ox) · (W + oW)ᵀ with the quantizers' offsets frozen at the base point.
class BitLinearGrad : public ::testing::TestWithParam<WeightQuant> {};

TEST_P(BitLinearGrad, ForwardUsesQuantizedOperandsAndSteBackwardIsTheSurrogateGradient) {
  const int N = 4, in = 6, out = 5;
  const WeightQuant wq = GetParam();
  Rng rng(test_seed());
  Vec x = randn(N * in, rng), W = randn(out * in, rng), R = randn(N * out, rng);
  Vec xq(x.size()), Wq(W.size()), y(N * out);
  ref().act_quant_int8(xq.data(), x.data(), N, in);
  kernels::QuantScale scale;
  ref().weight_quant_scale(&scale, W.data(), W.size(), wq);
  ref().weight_quantize(Wq.data(), W.data(), W.size(), wq, &scale, 0.0f);
  // The quantizers did quantize: few weight levels, and the operands differ from the raw ones.
  const std::set<double> levels(Wq.begin(), Wq.end());
  EXPECT_LE(levels.size(), wq == WeightQuant::Ternary ? 3u : wq == WeightQuant::Binary ? 2u : 256u);
  EXPECT_NE(xq, x);
  EXPECT_NE(Wq, W);

  linear_forward(ref(), xq.data(), Wq.data(), N, in, out, y.data());
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < out; ++o) {
      double s = 0;
      for (int i = 0; i < in; ++i) s += xq[n * in + i] * Wq[o * in + i];
      ASSERT_NEAR(y[n * out + o], s, 1e-12) << "y[" << n << "," << o << "]";
    }

  Vec ox(x.size()), oW(W.size());
  for (size_t i = 0; i < x.size(); ++i) ox[i] = xq[i] - x[i];
  for (size_t i = 0; i < W.size(); ++i) oW[i] = Wq[i] - W[i];
  auto loss = [&] {
    Vec xs(x.size()), Ws(W.size());
    for (size_t i = 0; i < x.size(); ++i) xs[i] = x[i] + ox[i];
    for (size_t i = 0; i < W.size(); ++i) Ws[i] = W[i] + oW[i];
    linear_forward(ref(), xs.data(), Ws.data(), N, in, out, y.data());
    return dot(y, R);
  };
  // dx_beta 0 overwrites dx; dW accumulates onto what is there (another micro-batch's gradient).
  const Vec dW0 = randn(W.size(), rng);
  Vec dx = randn(x.size(), rng), dW = dW0;
  linear_backward(ref(), R.data(), out, Wq.data(), xq.data(), in, N, dx.data(), 0.0, dW.data());
  for (size_t i = 0; i < dW.size(); ++i) dW[i] -= dW0[i];
  expect_fd(x, dx, loss, "dx");
  expect_fd(W, dW, loss, "dW");
  // dx_beta 1 adds a second consumer's gradient (q, k and v share their input).
  const Vec dx0 = randn(x.size(), rng);
  Vec dx2 = dx0, dW2(W.size(), 0.0);
  linear_backward(ref(), R.data(), out, Wq.data(), xq.data(), in, N, dx2.data(), 1.0, dW2.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(dx2[i], dx0[i] + dx[i], 1e-12) << "dx accumulated [" << i << "]";
}

INSTANTIATE_TEST_SUITE_P(Precisions, BitLinearGrad,
                         ::testing::Values(WeightQuant::Ternary, WeightQuant::Binary, WeightQuant::Int8));

// The fused head: loss = sum over rows with a target of (logsumexp - logit[target]) / count, computed
// in chunks of rows; its dx, dW against finite differences, with rows split across chunk boundaries.
TEST(LmHeadLoss, MatchesPlainCrossEntropyAndFiniteDifferencesAcrossChunks) {
  const int N = 7, d = 5, V = 9, chunk = 3;
  Rng rng(test_seed());
  Vec x = randn(N * d, rng), W = randn(V * d, rng);
  std::vector<int32_t> tgt(N);
  for (auto& t : tgt) t = static_cast<int32_t>(rng.uniform_int(V));
  tgt[4] = -1;  // ignored row, in the middle chunk
  const double dscale = 1.0 / (N - 1);
  Vec scratch(chunk * V), row_loss(N), dx(N * d), dW(V * d);
  auto loss = [&] {
    double sum = 0;
    lm_head_loss(ref(), x.data(), W.data(), tgt.data(), N, d, V, chunk, dscale, false, scratch.data(), row_loss.data(),
                 &sum, dx.data(), dW.data());
    return sum * dscale;
  };
  // Row losses against logsumexp computed here.
  const double mean = loss();
  double want_sum = 0;
  for (int n = 0; n < N; ++n) {
    Vec logit(V);
    for (int v = 0; v < V; ++v) logit[v] = 0;
    for (int v = 0; v < V; ++v)
      for (int i = 0; i < d; ++i) logit[v] += x[n * d + i] * W[v * d + i];
    const double mx = *std::max_element(logit.begin(), logit.end());
    double se = 0;
    for (double l : logit) se += std::exp(l - mx);
    const double want = tgt[n] < 0 ? 0.0 : mx + std::log(se) - logit[tgt[n]];
    EXPECT_NEAR(row_loss[n], want, 1e-12) << "row " << n;
    want_sum += want;
  }
  EXPECT_NEAR(mean, want_sum * dscale, 1e-12);

  const Vec dW0 = randn(W.size(), rng);
  dW = dW0;
  double sum = 0;
  lm_head_loss(ref(), x.data(), W.data(), tgt.data(), N, d, V, chunk, dscale, true, scratch.data(), row_loss.data(),
               &sum, dx.data(), dW.data());
  EXPECT_NEAR(sum * dscale, mean, 1e-12);
  for (size_t i = 0; i < dW.size(); ++i) dW[i] -= dW0[i];
  for (int i = 0; i < d; ++i) EXPECT_EQ(dx[4 * d + i], 0.0) << "an ignored row has no gradient";
  expect_fd(x, dx, loss, "dx");
  expect_fd(W, dW, loss, "dW");
}

// The trainer runs these in f32 on the fast CPU backend (GEMM path from ONEBIT_GEMM): same results
// as the f64 reference to f32 accuracy, on shapes that take the blocked and threaded paths.
struct FloatBuf {
  kernels::Ops<float>& ops;
  float* p;
  size_t n;
  FloatBuf(kernels::Ops<float>& o, const Vec& v) : ops(o), p(o.alloc(v.size())), n(v.size()) {
    std::vector<float> f(v.begin(), v.end());
    ops.upload(p, f.data(), n);
  }
  FloatBuf(kernels::Ops<float>& o, size_t count) : ops(o), p(o.alloc(count)), n(count) {}
  ~FloatBuf() { ops.free(p); }
  Vec get() const {
    std::vector<float> f(n);
    ops.download(f.data(), p, n);
    return Vec(f.begin(), f.end());
  }
};

void expect_close(const Vec& got, const Vec& want, double rel, const char* what) {
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], rel * scale) << what << "[" << i << "]";
}

// f64 values rounded to f32, so both backends see the same inputs.
Vec as_float(Vec v) {
  for (double& x : v) x = static_cast<float>(x);
  return v;
}

TEST(LinearFastBackend, MatchesReferenceForwardBackwardAndHead) {
  auto& fast = kernels::cpu_ops();
  Rng rng(test_seed());
  const int N = 70, in = 96, out = 130;
  const Vec x = as_float(randn(N * in, rng)), W = as_float(randn(out * in, rng, 0.1)),
            dy = as_float(randn(N * out, rng)), dW0 = as_float(randn(out * in, rng));
  Vec y(N * out), dx(N * in), dW = dW0;
  linear_forward(ref(), x.data(), W.data(), N, in, out, y.data());
  linear_backward(ref(), dy.data(), out, W.data(), x.data(), in, N, dx.data(), 0.0, dW.data());
  FloatBuf fx(fast, x), fW(fast, W), fdy(fast, dy), fy(fast, y.size()), fdx(fast, dx.size()), fdW(fast, dW0);
  linear_forward(fast, fx.p, fW.p, N, in, out, fy.p);
  linear_backward(fast, fdy.p, out, fW.p, fx.p, in, N, fdx.p, 0.0f, fdW.p);
  expect_close(fy.get(), y, 1e-5, "y");
  expect_close(fdx.get(), dx, 1e-5, "dx");
  expect_close(fdW.get(), dW, 1e-5, "dW");

  const int d = 64, V = 300, chunk = 16;
  const Vec hx = as_float(randn(N * d, rng)), hW = as_float(randn(V * d, rng, 0.2));
  std::vector<int32_t> tgt(N);
  for (auto& t : tgt) t = rng.uniform_int(5) == 0 ? -1 : static_cast<int32_t>(rng.uniform_int(V));
  const double dscale = 1.0 / N;
  Vec scratch(chunk * V), rl(N), hdx(N * d), hdW(V * d, 0.0);
  double sum = 0;
  lm_head_loss(ref(), hx.data(), hW.data(), tgt.data(), N, d, V, chunk, dscale, true, scratch.data(), rl.data(), &sum,
               hdx.data(), hdW.data());
  FloatBuf fhx(fast, hx), fhW(fast, hW), fscr(fast, scratch.size()), frl(fast, rl.size()), fhdx(fast, hdx.size()),
      fhdW(fast, hdW.size());
  // The fast backend's memory is host memory: its targets and loss sum may live on the stack.
  double fsum = 0;
  lm_head_loss(fast, fhx.p, fhW.p, tgt.data(), N, d, V, chunk, static_cast<float>(dscale), true, fscr.p, frl.p, &fsum,
               fhdx.p, fhdW.p);
  EXPECT_NEAR(fsum, sum, 1e-5 * std::abs(sum));
  expect_close(frl.get(), rl, 1e-5, "row_loss");
  expect_close(fhdx.get(), hdx, 1e-5, "head dx");
  expect_close(fhdW.get(), hdW, 1e-5, "head dW");
}

}  // namespace
}  // namespace onebit::model
