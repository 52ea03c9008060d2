// Trainer pieces that need the model: gradient accumulation equals one big batch, checkpoints
// round-trip exactly (and are readable by Python safetensors), and bad checkpoints give clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "onebit/data/batch_source.h"
#include "onebit/kernels/threads.h"
#include "onebit/model/param_layout.h"
#include "onebit/model/transformer.h"
#include "onebit/train/adamw.h"
#include "onebit/train/checkpoint.h"
#include "onebit/train/schedule.h"
#include "onebit/train/trainer.h"

using namespace onebit;
using namespace onebit::train;

namespace {

model::ModelConfig micro_config(int hidden = 32) {
  model::ModelConfig c;
  c.vocab_size = 61;
  c.hidden_size = hidden;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.intermediate_size = 48;
  c.max_position_embeddings = 32;
  c.validate("micro");
  return c;
}

// Rows are consecutive windows of a fixed random token stream; state = the next row.
class FixedSource final : public data::BatchSource {
 public:
  explicit FixedSource(int vocab) {
    Rng r(99);
    for (int i = 0; i < 4096; ++i) ids_.push_back(static_cast<int32_t>(r.uniform_int(static_cast<uint64_t>(vocab))));
  }
  void next_batch(int B, int T, int32_t* in, int32_t* tg) override {
    for (int b = 0; b < B; ++b, ++row_)
      for (int t = 0; t < T; ++t) {
        size_t i = static_cast<size_t>(row_) * T + t;
        in[b * T + t] = ids_[i];
        tg[b * T + t] = ids_[i + 1];
      }
  }
  json state() const override { return json{{"row", row_}}; }
  void restore(const json& s) override { row_ = s.at("row").get<int>(); }
  std::string describe() const override { return "fixed"; }

 private:
  std::vector<int32_t> ids_;
  int row_ = 0;
};

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / cat("onebit-train-", name, "-", ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

double rel_diff(std::span<const float> a, std::span<const float> b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

class GradAccumulation : public ::testing::TestWithParam<model::QuantPhase> {};

TEST_P(GradAccumulation, KMicroBatchesEqualOneKTimesBatch) {
  kernels::set_num_threads(2);
  const auto cfg = micro_config();
  model::Transformer m(cfg);
  m.init_weights(5);
  m.set_quant_state({GetParam(), 4.0f});
  const int T = 16, k = 4, B = 2;
  FixedSource s1(cfg.vocab_size), s2(cfg.vocab_size);
  const float l_acc = accumulate_gradients(m, s1, B, T, k, 0);
  std::vector<float> g_acc(m.grads().begin(), m.grads().end());
  const float l_big = accumulate_gradients(m, s2, B * k, T, 1, 0);
  std::vector<float> g_big(m.grads().begin(), m.grads().end());
  EXPECT_NEAR(l_acc, l_big, 1e-6 * std::abs(l_big));
  const double rd = rel_diff(g_acc, g_big);
  EXPECT_LT(rd, 1e-6) << "relative L2 difference of the gradients";
  std::printf("phase %d: loss %.9g vs %.9g, grad rel diff %.3g\n", int(GetParam()), l_acc, l_big, rd);
  double norm = 0;
  for (float g : g_big) norm += double(g) * g;
  EXPECT_GT(norm, 0.0);
  // A different batch really gives different gradients (the comparison can fail).
  FixedSource s3(cfg.vocab_size);
  std::vector<int32_t> tmp(static_cast<size_t>(B) * T * 2);
  s3.next_batch(B, T, tmp.data(), tmp.data() + B * T);
  accumulate_gradients(m, s3, B * k, T, 1, 0);
  EXPECT_GT(rel_diff(std::vector<float>(m.grads().begin(), m.grads().end()), g_big), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Phases, GradAccumulation,
                         ::testing::Values(model::QuantPhase::FullPrecision, model::QuantPhase::Soft,
                                           model::QuantPhase::Hard),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(Checkpoint, RoundTripsExactlyAndPrunes) {
  kernels::set_num_threads(2);
  const auto cfg = micro_config();
  model::Transformer m(cfg);
  m.init_weights(1);
  std::vector<DecayRange> ranges;
  for (const auto& p : m.params_info()) ranges.push_back({p.offset, p.numel, p.decay});
  AdamW opt(m.num_params(), {}, ranges);
  FixedSource src(cfg.vocab_size);
  for (int s = 0; s < 3; ++s) {
    accumulate_gradients(m, src, 2, 8, 1, 0);
    opt.step(m.params(), m.grads(), 1e-2f);
  }
  const fs::path out = temp_dir("ckpt");
  const std::string tok_json = "{\"version\":\"1.0\"}";
  json st{{"step", 3}, {"optimizer", {{"t", opt.steps_taken()}}}, {"data", src.state()}};
  for (int64_t step : {1, 2, 3, 4}) save_checkpoint(out, step, m, opt, st, tok_json, 3);
  EXPECT_FALSE(fs::exists(out / "checkpoints" / "step-000001"));  // pruned (keep 3)
  EXPECT_TRUE(fs::exists(out / "checkpoints" / "step-000002"));
  EXPECT_EQ(read_file(out / "checkpoints" / "latest"), "step-000004\n");
  auto latest = find_latest_checkpoint(out);
  ASSERT_TRUE(latest.has_value());
  for (const auto& e : fs::directory_iterator(out / "checkpoints"))  // no temp dirs left behind
    EXPECT_NE(e.path().filename().string().rfind(".tmp", 0), 0u) << e.path();

  model::Transformer m2(cfg);
  m2.init_weights(77);
  AdamW opt2(m2.num_params(), {}, ranges);
  json st2 = load_checkpoint(*latest, m2, opt2);
  EXPECT_EQ(st2, st);
  EXPECT_EQ(opt2.steps_taken(), 3);
  for (const auto& p : m.params_info()) {
    EXPECT_EQ(std::memcmp(m.params().data() + p.offset, m2.params().data() + p.offset, p.numel * 4), 0) << p.name;
    EXPECT_EQ(std::memcmp(opt.exp_avg().data() + p.offset, opt2.exp_avg().data() + p.offset, p.numel * 4), 0);
    EXPECT_EQ(std::memcmp(opt.exp_avg_sq().data() + p.offset, opt2.exp_avg_sq().data() + p.offset, p.numel * 4), 0);
  }

  // Python's safetensors reads the checkpoint's weights with the same values.
  const char* py = "/opt/venv-oracle/bin/python";
  if (::access(py, X_OK) == 0) {
    json ref;
    ref["metadata"] = {{"format", "pt"}};
    for (const auto& p : m.params_info()) {
      json v = json::array();
      for (size_t i = 0; i < p.numel; ++i) v.push_back(static_cast<double>(m.params()[p.offset + i]));
      ref["tensors"][p.name] = {{"dtype", "F32"}, {"shape", p.shape}, {"values", v}};
    }
    write_json_atomic(out / "ref.json", ref);
    std::string cmd = cat(py, " ", ONEBIT_SOURCE_DIR, "/tools/check_safetensors.py check ",
                          (*latest / "model.safetensors").string(), " ", (out / "ref.json").string());
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }

  // A checkpoint from another config is refused, naming the differing key.
  model::Transformer wide(micro_config(64));
  AdamW optw(wide.num_params(), {}, {});
  try {
    load_checkpoint(*latest, wide, optw);
    ADD_FAILURE() << "different config accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("different model config (hidden_size"), std::string::npos) << e.what();
  }
  // A truncated optimizer file is refused, naming the file.
  const fs::path of = *latest / "optimizer.safetensors";
  std::string bytes = read_file(of);
  write_file_atomic(of, bytes.substr(0, bytes.size() / 2));
  try {
    load_checkpoint(*latest, m2, opt2);
    ADD_FAILURE() << "truncated optimizer accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(of.string()), std::string::npos) << e.what();
  }
  write_file_atomic(out / "checkpoints" / "latest", "step-000009\n");
  EXPECT_THROW(find_latest_checkpoint(out), Error);
  fs::remove_all(out);
}
