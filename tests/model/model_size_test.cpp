// info's size accounting (model/model_size.h) against the parameters a built model really has.
#include <gtest/gtest.h>

#include "model_test_util.h"
#include "onebit/model/model_size.h"
#include "onebit/model/param_layout.h"
#include "onebit/model/transformer.h"

using namespace onebit;
using namespace onebit::model;

TEST(ModelSize, CountsMatchTheModel) {
  const ModelConfig cfg = model::testing::small_config();
  Transformer m(cfg);
  uint64_t total = 0, quant = 0;
  for (const auto& p : m.params_info()) {
    total += p.numel;
    if (p.precision == Precision::Ternary) quant += p.numel;
  }
  ModelSize s = model_size(build_param_layout(cfg).info);
  EXPECT_EQ(s.total_params, total);
  EXPECT_EQ(s.total_params, cfg.num_parameters());
  EXPECT_EQ(s.quantized_params, quant);
  EXPECT_EQ(s.quantized_params + s.high_precision_params, total);
  const uint64_t nq_tensors = s.by_precision[Precision::Ternary].tensors;
  EXPECT_EQ(nq_tensors, 2u * 7u);
  EXPECT_DOUBLE_EQ(s.packed_bytes, quant * 2.0 / 8 + nq_tensors * 4.0 + (total - quant) * 4.0);
  EXPECT_DOUBLE_EQ(s.f16_bytes, total * 2.0);
  EXPECT_DOUBLE_EQ(s.bits_per_quantized_weight(), 2.0);
}
