// Every kernel's backward against central finite differences in f64, on the reference kernels.
// Each test builds a scalar loss L = sum(out * R) with a fixed random R, so dL/dout = R. The linear
// layers and the fused LM head are checked as the model runs them in tests/model/linear_grad_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "finite_difference.h"
#include "kernel_test_util.h"
#include "test_seed.h"
#include "onebit/kernels/cpu/reference.h"
#include "onebit/kernels/kernels.h"

namespace onebit::kernels {
namespace {

using testing::randint;
using testing::randn;
using Vec = std::vector<double>;

using onebit::test::dot;
using onebit::test::expect_fd;

Ops<double>& ops() { return reference_ops<double>(); }

TEST(LayerGrad, RMSNorm) {
  const int N = 5, C = 7;
  Vec x = randn<double>(N * C, 1), w = randn<double>(C, 2, 0.5, 1.0), R = randn<double>(N * C, 3);
  Vec out(N * C), rstd(N);
  auto loss = [&] {
    ops().rmsnorm_forward(out.data(), nullptr, rstd.data(), x.data(), w.data(), N, C, 1e-5f);
    return dot(out, R);
  };
  loss();
  Vec dx(N * C, 0.0), dw(C, 0.0);
  ops().rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
  expect_fd(x, dx, loss, "dx");
  expect_fd(w, dw, loss, "dw");
}

TEST(LayerGrad, RoPE) {
  const int B = 2, T = 5, H = 3, hd = 6;
  Vec x = randn<double>(B * T * H * hd, 4), R = randn<double>(x.size(), 5);
  Vec cs(T * hd / 2), sn(T * hd / 2);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < hd / 2; ++i) {
      const double a = t * std::pow(10000.0, -2.0 * i / hd);
      cs[t * hd / 2 + i] = std::cos(a);
      sn[t * hd / 2 + i] = std::sin(a);
    }
  auto loss = [&] {
    Vec y = x;
    ops().rope(y.data(), cs.data(), sn.data(), B, T, H, hd, false);
    return dot(y, R);
  };
  Vec dx = R;
  ops().rope(dx.data(), cs.data(), sn.data(), B, T, H, hd, true);
  expect_fd(x, dx, loss, "dx");
}

TEST(LayerGrad, CausalAttentionGQA) {
  const int B = 2, T = 6, H = 4, KV = 2, hd = 3;
  Vec q = randn<double>(B * T * H * hd, 6), k = randn<double>(B * T * KV * hd, 7),
      v = randn<double>(B * T * KV * hd, 8);
  Vec R = randn<double>(B * T * H * hd, 9), y(R.size()), lse((size_t)B * H * T);
  auto loss = [&] {
    ops().attention_forward(y.data(), lse.data(), q.data(), k.data(), v.data(), B, T, H, KV, hd, 0.0f, 0);
    return dot(y, R);
  };
  loss();
  Vec dq(q.size()), dk(k.size()), dv(v.size());
  ops().attention_backward(dq.data(), dk.data(), dv.data(), R.data(), q.data(), k.data(), v.data(), y.data(),
                           lse.data(), B, T, H, KV, hd, 0.0f, 0);
  expect_fd(q, dq, loss, "dq");
  expect_fd(k, dk, loss, "dk");
  expect_fd(v, dv, loss, "dv");
  // Causality: the output at t must not depend on keys/values after t.
  Vec y0 = y;
  v[((size_t)(0 * T + T - 1) * KV + 0) * hd] += 1.0;
  loss();
  for (int t = 0; t < T - 1; ++t)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < hd; ++i) {
        const size_t idx = ((size_t)(0 * T + t) * H + h) * hd + i;
        EXPECT_EQ(y[idx], y0[idx]);
      }
}

// Attention dropout with a fixed mask (the seed is part of the function): the backward is the
// gradient of y = (P ∘ Z) V. Fresh inputs and mask seed per run (test_seed.h).
TEST(LayerGrad, CausalAttentionWithDropout) {
  const uint64_t s = onebit::test::test_seed(14);
  const int B = 2, T = 9, H = 4, KV = 2, hd = 5;
  const float p = 0.3f;
  const uint64_t mask_seed = s ^ 0x5eed;
  Vec q = randn<double>(B * T * H * hd, s), k = randn<double>(B * T * KV * hd, s + 1),
      v = randn<double>(B * T * KV * hd, s + 2);
  Vec R = randn<double>(B * T * H * hd, s + 3), y(R.size()), lse((size_t)B * H * T);
  auto loss = [&] {
    ops().attention_forward(y.data(), lse.data(), q.data(), k.data(), v.data(), B, T, H, KV, hd, p, mask_seed);
    return dot(y, R);
  };
  loss();
  Vec y_drop = y;
  Vec dq(q.size()), dk(k.size()), dv(v.size());
  ops().attention_backward(dq.data(), dk.data(), dv.data(), R.data(), q.data(), k.data(), v.data(), y.data(),
                           lse.data(), B, T, H, KV, hd, p, mask_seed);
  expect_fd(q, dq, loss, "dq");
  expect_fd(k, dk, loss, "dk");
  expect_fd(v, dv, loss, "dv");
  // The mask changes the output (p = 0.3 over 2*4*45 causal entries drops some with certainty).
  Vec y0(y.size()), lse0(lse.size());
  ops().attention_forward(y0.data(), lse0.data(), q.data(), k.data(), v.data(), B, T, H, KV, hd, 0.0f, 0);
  EXPECT_NE(y0, y_drop);
  EXPECT_EQ(lse0, lse) << "lse is that of the undropped scores";
}

class GatedActGrad : public ::testing::TestWithParam<GatedAct> {};

TEST_P(GatedActGrad, MatchesFiniteDifferences) {
  const size_t n = 40;
  Vec gate = randn<double>(n, 10, 1.5), up = randn<double>(n, 11), R = randn<double>(n, 12), out(n);
  for (auto& g : gate)
    if (std::abs(g) < 1e-3) g = 0.1;  // keep away from relu's kink
  auto loss = [&] {
    ops().gated_act_forward(out.data(), gate.data(), up.data(), n, GetParam());
    return dot(out, R);
  };
  Vec dg(n), du(n);
  ops().gated_act_backward(dg.data(), du.data(), R.data(), gate.data(), up.data(), n, GetParam());
  expect_fd(gate, dg, loss, "dgate");
  expect_fd(up, du, loss, "dup");
}

INSTANTIATE_TEST_SUITE_P(Acts, GatedActGrad, ::testing::Values(GatedAct::SwiGLU, GatedAct::ReLU2, GatedAct::GELU));

TEST(LayerGrad, ResidualScaleAndDropoutWithFixedMask) {
  const size_t n = 64;
  Vec x = randn<double>(n, 13), y = randn<double>(n, 14), R = randn<double>(n, 15), out(n);
  const double scale = 0.6;
  const float p = 0.3f;
  auto loss = [&] {
    ops().residual_forward(out.data(), x.data(), y.data(), scale, p, 1234, n);
    return dot(out, R);
  };
  Vec dy(n);
  ops().residual_backward(dy.data(), R.data(), scale, p, 1234, n);
  expect_fd(y, dy, loss, "dy");
  expect_fd(x, R, loss, "dx");  // identity path
  int dropped = 0;
  for (size_t i = 0; i < n; ++i) dropped += dy[i] == 0.0;
  EXPECT_GT(dropped, 5);
  EXPECT_LT(dropped, 35);
}

TEST(LayerGrad, Embedding) {
  const int V = 6, C = 4, N = 9;
  Vec table = randn<double>(V * C, 16), R = randn<double>(N * C, 17), out(N * C);
  auto tok = randint(N, V, 18);
  tok[1] = tok[0];  // repeated token: gradients add
  auto loss = [&] {
    ops().embedding_forward(out.data(), tok.data(), table.data(), N, C, V);
    return dot(out, R);
  };
  Vec dt(V * C, 0.0);
  ops().embedding_backward(dt.data(), R.data(), tok.data(), N, C);
  expect_fd(table, dt, loss, "dtable");
}

TEST(LayerGrad, CrossEntropy) {
  const int N = 5, V = 7;
  Vec logits = randn<double>(N * V, 19, 2.0);
  std::vector<int32_t> tgt = randint(N, V, 20);
  tgt[2] = -1;
  Vec losses(N);
  const double dscale = 1.0 / 4;
  auto loss = [&] {
    Vec l = logits;
    double sum = 0;
    ops().cross_entropy(l.data(), losses.data(), &sum, tgt.data(), N, V, 0.0, false);
    return sum * dscale;
  };
  Vec g = logits;
  ops().cross_entropy(g.data(), losses.data(), nullptr, tgt.data(), N, V, dscale, true);
  expect_fd(logits, g, loss, "dlogits");
}

// QK-norm is RMSNorm over each head's hd values: same kernel with N*H rows; check the row split.
TEST(LayerGrad, QKNormPerHead) {
  const int N = 3, H = 2, hd = 4;
  Vec q = randn<double>(N * H * hd, 27), w = randn<double>(hd, 28, 0.3, 1.0), R = randn<double>(q.size(), 29);
  Vec out(q.size()), rstd(N * H);
  auto loss = [&] {
    ops().rmsnorm_forward(out.data(), nullptr, rstd.data(), q.data(), w.data(), N * H, hd, 1e-6f);
    return dot(out, R);
  };
  loss();
  Vec dq(q.size(), 0.0), dw(hd, 0.0);
  ops().rmsnorm_backward(dq.data(), dw.data(), R.data(), q.data(), w.data(), rstd.data(), N * H, hd);
  expect_fd(q, dq, loss, "dq");
  expect_fd(w, dw, loss, "dw");
}

}  // namespace
}  // namespace onebit::kernels
