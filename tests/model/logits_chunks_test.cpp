// The LM head + cross-entropy in row chunks (Network::head_forward, model::lm_head_loss): the chunk is the
// backend's logits budget in rows, rounded down to its row multiple (CUDA: 256, whole tiles of the head's
// products) where the budget holds one; every row is scored once, and the loss and every gradient equal the
// one-chunk network's up to the head's per-chunk dW summation order.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "forwarding_ops.h"
#include "model_test_util.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/network.h"

namespace onebit::model {
namespace {

// A backend with a chosen logits budget (in rows of the vocabulary) and row multiple, recording the rows of
// every cross-entropy call.
class ChunkedOps : public kernels::testing::ForwardingOps<double> {
 public:
  ChunkedOps(kernels::Ops<double>& base, size_t budget_rows, int vocab, int multiple)
      : ForwardingOps(base), elems_(budget_rows * (size_t)vocab), multiple_(multiple) {}
  size_t logits_chunk_elems() const override { return elems_; }
  int logits_chunk_row_multiple() const override { return multiple_; }
  void cross_entropy(double* logits, double* losses, double* loss_sum, const int32_t* tgt, int N, int V,
                     double dscale, bool want_grad) override {
    rows.push_back(N);
    ForwardingOps::cross_entropy(logits, losses, loss_sum, tgt, N, V, dscale, want_grad);
  }
  std::vector<int> rows;

 private:
  size_t elems_;
  int multiple_;
};

struct Trained {
  double loss;
  std::vector<double> grads;
  std::vector<int> rows;
};

Trained run(size_t budget_rows, int multiple) {
  const ModelConfig cfg = testing::small_config();
  ChunkedOps ops(kernels::reference_ops<double>(), budget_rows, cfg.vocab_size, multiple);
  Network<double> net(cfg, ops);
  net.init_weights(7);
  net.set_training(true);
  const testing::Batch b = testing::random_batch(cfg, 3, 11, 9);  // 33 rows
  net.zero_grad();
  Trained r;
  r.loss = net.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
  net.backward(1.0);
  r.grads.assign(net.grads(), net.grads() + net.num_params());
  r.rows = ops.rows;
  return r;
}

void expect_same_training(const Trained& a, const Trained& whole) {
  EXPECT_NEAR(a.loss, whole.loss, 1e-12 * std::abs(whole.loss));
  ASSERT_EQ(a.grads.size(), whole.grads.size());
  for (size_t i = 0; i < a.grads.size(); ++i) ASSERT_NEAR(a.grads[i], whole.grads[i], 1e-12) << "parameter " << i;
}

TEST(LogitsChunks, BudgetRoundedDownToTheRowMultiple) {
  const Trained whole = run(1000, 1);
  EXPECT_EQ(whole.rows, (std::vector<int>{33}));
  const Trained plain = run(13, 1);
  EXPECT_EQ(plain.rows, (std::vector<int>{13, 13, 7}));
  const Trained rounded = run(13, 4);  // 13 rows of budget -> chunks of 12
  EXPECT_EQ(rounded.rows, (std::vector<int>{12, 12, 9}));
  expect_same_training(plain, whole);
  expect_same_training(rounded, whole);
}

TEST(LogitsChunks, BudgetBelowOneMultipleKeepsTheBudget) {
  const Trained r = run(3, 8);  // fewer rows than one multiple: the budget's own rows, not zero
  EXPECT_EQ(r.rows, std::vector<int>(11, 3));
  expect_same_training(r, run(1000, 1));
}

}  // namespace
}  // namespace onebit::model
