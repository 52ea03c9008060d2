// Trainer pieces that need the model: gradient accumulation equals one big batch (and, as
// documented, not when micro-batches score different numbers of targets), checkpoints round-trip
// exactly (and are readable by Python safetensors) and prune by step number, bad checkpoints and
// trainer_state.json fields give clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
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
#include "onebit/train/train_options.h"
#include "onebit/train/trainer.h"
#include "train_test_util.h"
#include "oracle_python.h"

using namespace onebit;
using namespace onebit::train;

namespace {

using onebit::train::testing::micro_config;

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

// Wraps a source and ignores (target -1) the first `ignore[i]` targets of the i-th batch it serves.
class IgnoringSource final : public data::BatchSource {
 public:
  IgnoringSource(data::BatchSource& inner, std::vector<int> ignore) : inner_(inner), ignore_(std::move(ignore)) {}
  void next_batch(int B, int T, int32_t* in, int32_t* tg) override {
    inner_.next_batch(B, T, in, tg);
    const int n = batch_ < ignore_.size() ? ignore_[batch_] : 0;
    for (int i = 0; i < n; ++i) tg[i] = -1;
    ++batch_;
  }
  json state() const override { return inner_.state(); }
  void restore(const json& s) override { inner_.restore(s); }
  std::string describe() const override { return "ignoring"; }

 private:
  data::BatchSource& inner_;
  std::vector<int> ignore_;
  size_t batch_ = 0;
};

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / cat("onebit-train-", name, "-", ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A trainer_state.json as the trainer writes it, at `step`.
json valid_trainer_state(int64_t step, const json& data_state) {
  TrainOptions run;
  run.data = "corpus.txt";
  resolve_defaults(run);
  return json{{"step", step},
              {"tokens_seen", step * 16},
              {"data", data_state},
              {"rng", {{"dropout", Rng(3).state_string()}}},
              {"quant", {{"phase", "hard"}, {"k", 100.0}}},
              {"lr", 1e-3},
              {"config_hash", 12345},
              {"tokenizer_hash", 678},
              {"threads", 2},
              {"optimizer", {{"name", "adamw"}, {"t", step}}},
              {"run", run_options_json(run)}};
}

// Gradients of one accumulate_gradients call.
std::vector<float> grads_of(model::Transformer& m, data::BatchSource& src, int B, int T, int accum) {
  accumulate_gradients(m, src, B, T, accum, 0);
  return {m.grads().begin(), m.grads().end()};
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

// k micro-batches of B equal one batch of k*B exactly when there is no dropout (micro_config has
// none) and every micro-batch scores the same number of targets (FixedSource ignores none); then
// the only difference is f32 rounding (summation order, and on OpenBLAS its batch-size-dependent
// rows), held here to 1e-6 relative. GradAccumulationLimits below shows the unequal-count case.
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

// The documented limit of the equality above (trainer.h): each micro-batch's loss is a mean over its
// own scored targets, so with n_a scored targets in micro-batch a, accumulation gives the plain mean
// of the micro-batch gradients, sum g_a / k, while one big batch weights them, sum n_a g_a / sum n_a.
// They agree only when every n_a is equal; here the first micro-batch has half its targets ignored.
TEST(GradAccumulationLimits, UnequalScoredTargetsGiveTheMeanOfMicroBatchMeans) {
  kernels::set_num_threads(2);
  const auto cfg = micro_config();
  model::Transformer m(cfg);
  m.init_weights(6);
  m.set_quant_state({model::QuantPhase::FullPrecision, 1.0f});
  const int T = 16, B = 2;
  const std::vector<int> ignore = {B * T / 2, 0};
  const double n0 = B * T - ignore[0], n1 = B * T;

  FixedSource f1(cfg.vocab_size), f2(cfg.vocab_size), f3(cfg.vocab_size);
  IgnoringSource acc_src(f1, ignore);
  const std::vector<float> acc = grads_of(m, acc_src, B, T, 2);
  // The big batch sees the same rows with the same ignored targets (all in its first B rows).
  IgnoringSource big_src(f2, {ignore[0]});
  const std::vector<float> big = grads_of(m, big_src, 2 * B, T, 1);
  IgnoringSource parts_src(f3, ignore);
  const std::vector<float> g0 = grads_of(m, parts_src, B, T, 1);
  const std::vector<float> g1 = grads_of(m, parts_src, B, T, 1);

  std::vector<float> mean(g0.size()), weighted(g0.size());
  for (size_t i = 0; i < g0.size(); ++i) {
    mean[i] = static_cast<float>((double(g0[i]) + g1[i]) / 2);
    weighted[i] = static_cast<float>((n0 * g0[i] + n1 * g1[i]) / (n0 + n1));
  }
  EXPECT_LT(rel_diff(acc, mean), 1e-5) << "accumulation = mean of the micro-batch gradients";
  EXPECT_LT(rel_diff(big, weighted), 1e-5) << "one batch = the count-weighted mean";
  EXPECT_GT(rel_diff(acc, big), 1e-3) << "so the two differ when the counts differ";
}

// The interruptible form polls `stop` before each micro-batch and abandons the step at once, so a
// huge --accumulation-steps cannot keep Ctrl-C waiting.
TEST(GradAccumulationLimits, StopAbandonsTheStepBeforeTheNextMicroBatch) {
  kernels::set_num_threads(2);
  const auto cfg = micro_config();
  model::Transformer m(cfg);
  m.init_weights(7);
  FixedSource src(cfg.vocab_size);
  int polls = 0;
  auto r = accumulate_gradients(m, src, 2, 8, 1000, 0, [&] { return ++polls > 3; });
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(polls, 4);  // three micro-batches ran, the fourth was never started
  EXPECT_EQ(src.state()["row"], 3 * 2);
  auto full = accumulate_gradients(m, src, 2, 8, 2, 0, [] { return false; });
  ASSERT_TRUE(full.has_value());
  EXPECT_TRUE(std::isfinite(*full));
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
  json st = valid_trainer_state(3, src.state());
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

// Python's safetensors (the format's defining implementation) reads a checkpoint's weights with the
// values onebit holds, and the oracle catches a reference that is off by one value.
TEST(Checkpoint, PythonSafetensorsReadsTheSavedWeights) {
  ONEBIT_ORACLE_PYTHON_OR_SKIP(python);
  kernels::set_num_threads(2);
  const auto cfg = micro_config();
  model::Transformer m(cfg);
  m.init_weights(3);
  std::vector<DecayRange> ranges;
  for (const auto& p : m.params_info()) ranges.push_back({p.offset, p.numel, p.decay});
  AdamW opt(m.num_params(), {}, ranges);
  FixedSource src(cfg.vocab_size);
  accumulate_gradients(m, src, 2, 8, 1, 0);
  opt.step(m.params(), m.grads(), 1e-2f);
  const fs::path out = temp_dir("ckpt-py");
  save_checkpoint(out, 1, m, opt, json{{"step", 1}}, "{\"version\":\"1.0\"}", 3);
  auto latest = find_latest_checkpoint(out);
  ASSERT_TRUE(latest.has_value());
  json ref;
  ref["metadata"] = {{"format", "pt"}};
  for (const auto& p : m.params_info()) {
    json v = json::array();
    for (size_t i = 0; i < p.numel; ++i) v.push_back(static_cast<double>(m.params()[p.offset + i]));
    ref["tensors"][p.name] = {{"dtype", "F32"}, {"shape", p.shape}, {"values", v}};
  }
  write_json_atomic(out / "ref.json", ref);
  std::string cmd = cat(python, " ", ONEBIT_SOURCE_DIR, "/tools/check_safetensors.py check ",
                        (*latest / "model.safetensors").string(), " ", (out / "ref.json").string());
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string first = m.params_info().front().name;
  ref["tensors"][first]["values"][0] = ref["tensors"][first]["values"][0].get<double>() + 1.0;
  write_json_atomic(out / "ref.json", ref);
  EXPECT_NE(std::system((cmd + " > /dev/null").c_str()), 0) << "the oracle accepted a wrong value";
  fs::remove_all(out);
}

TEST(Checkpoint, PrunesByStepNumberPastSixDigits) {
  kernels::set_num_threads(2);
  const auto cfg = micro_config();
  model::Transformer m(cfg);
  m.init_weights(1);
  AdamW opt(m.num_params(), {}, {});
  const fs::path out = temp_dir("prune");
  FixedSource src(cfg.vocab_size);
  for (int64_t step : {999998, 999999, 1000000, 1000001})
    save_checkpoint(out, step, m, opt, valid_trainer_state(step, src.state()), "{}", 2);
  EXPECT_FALSE(fs::exists(out / "checkpoints" / "step-999998"));
  EXPECT_FALSE(fs::exists(out / "checkpoints" / "step-999999"));
  EXPECT_TRUE(fs::exists(out / "checkpoints" / "step-1000000"));
  EXPECT_TRUE(fs::exists(out / "checkpoints" / "step-1000001"));
  EXPECT_EQ(read_file(out / "checkpoints" / "latest"), "step-1000001\n");
  fs::remove_all(out);
}

// Every field of trainer_state.json is type- and range-checked, and the error names the file and
// the key, so a hand-edited or corrupt state cannot start a run that hangs or trains NaNs.
TEST(TrainerStateFile, EveryFieldIsCheckedAndNamed) {
  const json good = valid_trainer_state(7, json{{"row", 3}});
  const TrainerState s = parse_trainer_state(good, "ckpt/trainer_state.json");
  EXPECT_EQ(s.step, 7);
  EXPECT_EQ(s.optimizer_steps, 7);
  EXPECT_EQ(s.run.data, "corpus.txt");
  EXPECT_EQ(s.threads, 2);
  struct Case {
    const char* pointer;
    json value;
    const char* needle;
  };
  const Case cases[] = {
      {"/step", -4, "key \"step\" must be in [0, "},
      {"/step", "7", "key \"step\" has the wrong type (got string"},
      {"/tokens_seen", -1, "key \"tokens_seen\" must be >= 0"},
      {"/optimizer/t", -1, "key \"optimizer.t\" must be in [0, "},
      {"/optimizer/t", 6, "key \"optimizer.t\" is 6 but \"step\" is 7"},
      {"/optimizer/name", "sgd", "key \"optimizer.name\""},
      {"/rng/dropout", "xyz", "key \"rng.dropout\""},
      {"/rng/dropout", std::string(64, '0'), "key \"rng.dropout\""},
      {"/quant/phase", "medium", "key \"quant.phase\""},
      {"/quant/k", "x", "key \"quant.k\" has the wrong type"},
      {"/lr", -1.0, "key \"lr\" must be a finite number >= 0"},
      {"/threads", 0, "key \"threads\" must be in [1, "},
      {"/world_size", 0, "key \"world_size\" must be in [1, "},
      {"/world_size", "2", "key \"world_size\" has the wrong type"},
      {"/data", 5, "key \"data\" has the wrong type"},
      {"/config_hash", 1.5, "key \"config_hash\" has the wrong type"},
      {"/run", json::array(), "key \"run\" has the wrong type"},
      {"/run/accumulation_steps", 2147483647, "key \"run.accumulation_steps\" must be in [1, 4096]"},
      {"/run/batch_size", 1.5, "key \"run.batch_size\" has the wrong type (got number"},
      {"/run/batch_size", 4294967296LL, "key \"run.batch_size\" is out of range"},
      {"/run/beta1", 1.0, "key \"run.beta1\" must be in [0, 1)"},
      {"/run/beta2", 2, "key \"run.beta2\" must be in [0, 1)"},
      {"/run/lr", 0, "key \"run.lr\" must be > 0"},
      {"/run/weight_decay", -0.1, "key \"run.weight_decay\" must be >= 0"},
      {"/run/schedule", "cosin", "key \"run.schedule\" \"cosin\" is not one of"},
      {"/run/seed", -3, "key \"run.seed\" must be >= 0"},
      {"/run/min_lr", 1.0, "\"run.min_lr\" 1 is above \"run.lr\""},
      {"/run/seq_len", "256", "key \"run.seq_len\" has the wrong type"},
  };
  for (const Case& c : cases) {
    json bad = good;
    bad[json::json_pointer(c.pointer)] = c.value;
    try {
      parse_trainer_state(bad, "ckpt/trainer_state.json");
      ADD_FAILURE() << c.pointer << " = " << c.value.dump() << " accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind("ckpt/trainer_state.json: ", 0), 0u) << msg;
      EXPECT_NE(msg.find(c.needle), std::string::npos) << "expected \"" << c.needle << "\" in: " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  for (const char* key : {"step", "tokens_seen", "data", "rng", "quant", "lr", "config_hash", "tokenizer_hash",
                          "optimizer", "run"}) {
    json bad = good;
    bad.erase(key);
    EXPECT_THROW(parse_trainer_state(bad, "f"), Error) << key;
  }
  json no_threads = good;
  no_threads.erase("threads");  // older checkpoints
  EXPECT_FALSE(parse_trainer_state(no_threads, "f").threads.has_value());
  // Data-parallel runs record their number of ranks; checkpoints without it came from one process.
  EXPECT_EQ(parse_trainer_state(good, "f").world_size, 1);
  json four_ranks = good;
  four_ranks["world_size"] = 4;
  EXPECT_EQ(parse_trainer_state(four_ranks, "f").world_size, 4);
  json no_run_key = good;
  no_run_key["run"].erase("grad_clip");
  EXPECT_THROW(parse_trainer_state(no_run_key, "f"), Error);
}
