// AdamW against a double-precision transcription of torch.optim.AdamW, gradient clipping, the LR
// and quantization schedules, and the metrics log's resume truncation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>

#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/kernels/threads.h"
#include "onebit/train/adamw.h"
#include "onebit/train/metrics_log.h"
#include "onebit/train/schedule.h"

using namespace onebit;
using namespace onebit::train;

TEST(AdamW, MatchesTorchFormulaWithDecoupledDecayOnlyWhereAllowed) {
  const size_t n = 3000;
  Rng rng(3);
  std::vector<float> p(n), g(n);
  for (float& x : p) x = rng.normal();
  std::vector<double> rp(p.begin(), p.end()), rm(n, 0.0), rv(n, 0.0);
  // Middle range is a "norm": no decay.
  std::vector<DecayRange> ranges = {{0, 1000, true}, {1000, 500, false}, {1500, 1500, true}};
  AdamWConfig cfg{0.9f, 0.95f, 1e-8f, 0.1f};
  AdamW opt(n, cfg, ranges);
  for (int t = 1; t <= 5; ++t) {
    for (float& x : g) x = rng.normal() * 0.1f;
    const double lr = 1e-2 * t;
    opt.step(p, g, static_cast<float>(lr));
    for (size_t i = 0; i < n; ++i) {
      bool decay = !(i >= 1000 && i < 1500);
      if (decay) rp[i] *= 1.0 - lr * 0.1;
      rm[i] = 0.9 * rm[i] + 0.1 * g[i];
      rv[i] = 0.95 * rv[i] + 0.05 * double(g[i]) * g[i];
      double mh = rm[i] / (1 - std::pow(0.9, t)), vh = rv[i] / (1 - std::pow(0.95, t));
      rp[i] -= lr * mh / (std::sqrt(vh) + 1e-8);
    }
  }
  double maxerr = 0;
  for (size_t i = 0; i < n; ++i) maxerr = std::max(maxerr, std::abs(p[i] - rp[i]) / (1e-3 + std::abs(rp[i])));
  EXPECT_LT(maxerr, 1e-5);
  EXPECT_EQ(opt.steps_taken(), 5);
  // With zero gradients only decay moves a weight: the no-decay range must stay fixed.
  std::vector<float> before = p;
  std::fill(g.begin(), g.end(), 0.0f);
  AdamW fresh(n, cfg, ranges);
  fresh.step(p, g, 0.5f);
  EXPECT_EQ(p[1200], before[1200]);
  EXPECT_FLOAT_EQ(p[10], before[10] * (1.0f - 0.5f * 0.1f));
}

TEST(GradClip, GlobalNormAndScaling) {
  std::vector<float> g(100000);
  Rng rng(5);
  double ss = 0;
  for (float& x : g) {
    x = rng.normal();
    ss += double(x) * x;
  }
  const double norm = std::sqrt(ss);
  EXPECT_NEAR(global_grad_norm(g), norm, 1e-9 * norm);
  kernels::set_num_threads(1);
  const double n1 = global_grad_norm(g);
  kernels::set_num_threads(2);
  EXPECT_EQ(global_grad_norm(g), n1);  // independent of the thread count
  std::vector<float> c = g;
  EXPECT_NEAR(clip_grad_norm(c, 1.0), norm, 1e-9 * norm);
  EXPECT_NEAR(global_grad_norm(c), 1.0, 1e-5);
  std::vector<float> d = g;
  clip_grad_norm(d, 0.0);  // disabled
  EXPECT_EQ(d, g);
  std::vector<float> e = g;
  clip_grad_norm(e, 2 * norm);  // under the limit: untouched
  EXPECT_EQ(e, g);
}

TEST(LrSchedule, WarmupCosineLinearConstantAndFloor) {
  LrSchedule s{LrKind::Cosine, 1.0, 0.1, 10, 110};
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(4), 0.5);
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);  // half way: midpoint of peak and floor
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.at(500), 0.1, 1e-12);  // stays at the floor
  for (int64_t i = 11; i < 110; ++i) EXPECT_LE(s.at(i), s.at(i - 1));
  LrSchedule l{LrKind::Linear, 1.0, 0.0, 0, 100};
  EXPECT_DOUBLE_EQ(l.at(0), 1.0);
  EXPECT_DOUBLE_EQ(l.at(25), 0.75);
  LrSchedule c{LrKind::Constant, 0.3, 0.0, 5, 100};
  EXPECT_DOUBLE_EQ(c.at(2), 0.3 * 3 / 5);
  EXPECT_DOUBLE_EQ(c.at(99), 0.3);
  EXPECT_EQ(lr_kind_from_string("linear"), LrKind::Linear);
  try {
    lr_kind_from_string("cosin");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--schedule"), std::string::npos);
  }
}

TEST(QuantSchedule, ThreePhasesWithRisingSharpness) {
  QuantSchedule q{10, 20, 1.0, 100.0};
  EXPECT_EQ(q.at(0).phase, model::QuantPhase::FullPrecision);
  EXPECT_EQ(q.at(9).phase, model::QuantPhase::FullPrecision);
  EXPECT_EQ(q.at(10).phase, model::QuantPhase::Soft);
  EXPECT_FLOAT_EQ(q.at(10).k, 1.0f);
  EXPECT_NEAR(q.at(20).k, 10.0f, 1e-4);  // geometric: half way is sqrt(1 * 100)
  for (int s = 11; s < 30; ++s) EXPECT_GT(q.at(s).k, q.at(s - 1).k);
  EXPECT_EQ(q.at(29).phase, model::QuantPhase::Soft);
  EXPECT_EQ(q.at(30).phase, model::QuantPhase::Hard);
  QuantSchedule hard{0, 0, 1.0, 100.0};
  EXPECT_EQ(hard.at(0).phase, model::QuantPhase::Hard);
}

TEST(MetricsLog, ResumeDropsLinesAfterTheCheckpointAndATornTail) {
  fs::path d = fs::temp_directory_path() / cat("onebit-metrics-", ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  const fs::path p = d / "metrics.jsonl";
  {
    MetricsLog m(p, -1);
    for (int s = 1; s <= 6; ++s) m.append(json{{"step", s}, {"loss", 1.0 / s}});
    m.append(json{{"step", 4}, {"val_loss", 0.5}});
  }
  write_file_atomic(p, read_file(p) + "{\"step\": 7, \"lo");  // killed mid-line
  {
    MetricsLog m(p, 4);
    m.append(json{{"step", 5}, {"loss", 9.0}});
  }
  auto lines = read_jsonl(p);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[3]["step"], 4);
  EXPECT_EQ(lines[4]["val_loss"], 0.5);
  EXPECT_EQ(lines[5]["loss"], 9.0);
  { MetricsLog fresh(p, -1); }
  EXPECT_TRUE(read_jsonl(p).empty());
  fs::remove_all(d);
}
