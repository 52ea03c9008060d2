// The single-process pieces of data-parallel training (train/data_parallel.h), on fresh random inputs:
//   - ZeRO-1: AdamWs that each own one shard of the arena, run side by side on the same gradients,
//     update exactly the parameters and moments one whole-arena AdamW does (bitwise: element-wise);
//   - each rank's rows of a global batch (RankRowsSource) are disjoint, together make the batch one
//     source with the whole batch gives, and leave the same data state;
//   - a per-rank data source (stack-stream's shards) on a world of one: used as is, its state saved
//     as is, and a state saved by two ranks refused with one line naming the numbers;
//   - the per-rank memory plan: the activation arena it predicts is the one the model allocates, and
//     the optimizer shard falls with the number of ranks (8b preset on 1 and 8 ranks).
#include <gtest/gtest.h>

#include <numeric>

#include "onebit/core/rng.h"
#include "onebit/data/window_sources.h"
#include "onebit/dist/communicator.h"
#include "onebit/model/config.h"
#include "onebit/model/transformer.h"
#include "onebit/core/error.h"
#include "onebit/train/adamw.h"
#include "onebit/train/data_parallel.h"
#include "onebit/train/memory_plan.h"
#include "test_seed.h"
#include "train_test_util.h"

using namespace onebit;
using namespace onebit::train;

TEST(ShardedAdamW, ShardsTogetherEqualTheWholeArena) {
  Rng rng(test::test_seed());
  const size_t n = 5000 + rng.uniform_int(3000);
  std::vector<float> p(n), g(n);
  for (float& x : p) x = rng.normal();
  // Decay ranges that straddle the shard boundaries, one without decay.
  const std::vector<DecayRange> ranges = {{0, n / 3, true}, {n / 3, n / 5, false}, {n / 3 + n / 5, n - n / 3 - n / 5, true}};
  const AdamWConfig cfg{0.9f, 0.95f, 1e-8f, 0.1f};
  for (int world : {2, 3, 8}) {
    std::vector<float> whole_p = p, shard_p = p;
    AdamW whole(n, cfg, ranges);
    const std::vector<size_t> counts = dist::split_counts(n, world);
    ASSERT_EQ(std::accumulate(counts.begin(), counts.end(), size_t{0}), n);
    std::vector<std::unique_ptr<AdamW>> shards;
    for (int r = 0; r < world; ++r)
      shards.push_back(std::make_unique<AdamW>(n, cfg, ranges, kernels::cpu_ops(), dist::part_offset(counts, r),
                                               counts[static_cast<size_t>(r)]));
    for (int t = 1; t <= 4; ++t) {
      for (float& x : g) x = rng.normal() * 0.3f;
      const float lr = 1e-2f * static_cast<float>(t);
      // Clipping (max norm below the gradients' norm): each shard takes the norm over the whole arena.
      whole.clip_and_step(whole_p.data(), g.data(), lr, 5.0);
      std::vector<float> next = shard_p;  // every shard reads the same parameters, writes only its own
      for (auto& s : shards) {
        std::vector<float> mine = shard_p;
        s->clip_and_step(mine.data(), g.data(), lr, 5.0);
        EXPECT_EQ(s->read_grad_norm(), whole.read_grad_norm());
        for (size_t i = 0; i < n; ++i) {
          const bool owned = i >= s->shard_offset() && i < s->shard_offset() + s->shard_count();
          if (owned) next[i] = mine[i];
          else ASSERT_EQ(mine[i], shard_p[i]) << "a shard wrote outside its range at " << i;
        }
      }
      shard_p = next;
      ASSERT_EQ(shard_p, whole_p) << "world " << world << " step " << t;
    }
    // The moments: the shards' downloads laid end to end are the whole arena's.
    std::vector<float> wm, wv, all_m, all_v;
    whole.download_state(wm, wv);
    for (auto& s : shards) {
      std::vector<float> m, v;
      s->download_state(m, v);
      ASSERT_EQ(m.size(), s->shard_count());
      all_m.insert(all_m.end(), m.begin(), m.end());
      all_v.insert(all_v.end(), v.begin(), v.end());
    }
    EXPECT_EQ(all_m, wm);
    EXPECT_EQ(all_v, wv);
    // upload_state takes the whole arena's moments (as in the checkpoint file) and keeps the shard.
    AdamW again(n, cfg, ranges, kernels::cpu_ops(), dist::part_offset(counts, 1), counts[1]);
    again.upload_state(wm, wv);
    std::vector<float> m1, v1;
    again.download_state(m1, v1);
    EXPECT_TRUE(std::equal(m1.begin(), m1.end(), wm.begin() + static_cast<long>(counts[0])));
  }
}

TEST(SplitCounts, ContiguousAlignedAndComplete) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{63}, size_t{1000}, size_t{1873088}, size_t{123456789}})
    for (int world : {1, 2, 3, 7, 8}) {
      const std::vector<size_t> c = dist::split_counts(n, world);
      ASSERT_EQ(c.size(), static_cast<size_t>(world));
      EXPECT_EQ(std::accumulate(c.begin(), c.end(), size_t{0}), n);
      for (int r = 0; r + 1 < world; ++r) {
        EXPECT_EQ(dist::part_offset(c, r + 1) % 64, 0u) << n << " over " << world;
        // Near-equal: no part more than 64 values short of an even share (the last absorbs the rest).
        EXPECT_LE(n / static_cast<size_t>(world), c[static_cast<size_t>(r)] + 64) << n << " over " << world;
      }
    }
}

TEST(RankRows, RanksReadDisjointRowsOfTheGlobalBatchAndKeepItsState) {
  Rng rng(test::test_seed(1));
  std::vector<int32_t> ids(20000);
  for (auto& t : ids) t = static_cast<int32_t>(rng.uniform_int(1000));
  auto tokens = std::make_shared<data::TokenVector>(ids);
  const uint64_t seed = rng.next_u64();
  const int B = 3, T = 16, world = 4;
  data::RandomWindowSource whole(tokens, seed, "whole");
  std::vector<std::unique_ptr<data::BatchSource>> ranks;
  for (int r = 0; r < world; ++r)
    ranks.push_back(std::make_unique<data::RankRowsSource>(std::make_unique<data::RandomWindowSource>(tokens, seed, "r"), r, world));
  std::vector<int32_t> in(static_cast<size_t>(B) * world * T), tg(in.size()), rin(static_cast<size_t>(B) * T), rtg(rin.size());
  for (int step = 0; step < 5; ++step) {
    whole.next_batch(B * world, T, in.data(), tg.data());
    for (int r = 0; r < world; ++r) {
      ranks[static_cast<size_t>(r)]->next_batch(B, T, rin.data(), rtg.data());
      const size_t at = static_cast<size_t>(r) * B * T;
      EXPECT_TRUE(std::equal(rin.begin(), rin.end(), in.begin() + static_cast<long>(at))) << "rank " << r;
      EXPECT_TRUE(std::equal(rtg.begin(), rtg.end(), tg.begin() + static_cast<long>(at))) << "rank " << r;
      EXPECT_EQ(ranks[static_cast<size_t>(r)]->state(), whole.state());
    }
  }
  // The base class's way (read the whole batch, keep the rows) gives the same rows as the override.
  data::RandomWindowSource a(tokens, seed, "a"), b(tokens, seed, "b");
  a.next_batch_rows(B * world, B, B, T, rin.data(), rtg.data());
  b.data::BatchSource::next_batch_rows(B * world, B, B, T, in.data(), tg.data());
  EXPECT_TRUE(std::equal(rin.begin(), rin.end(), in.begin()));
  EXPECT_EQ(a.state(), b.state());
}

TEST(PerRankData, OneProcessKeepsItsStateAndRefusesTwoRanksPositions) {
  DataParallel dp(kernels::Device::Cpu);
  ASSERT_EQ(dp.world_size(), 1) << "run outside mpirun";
  auto tokens = std::make_shared<data::TokenVector>(std::vector<int32_t>(1000, 1));
  auto src = std::make_unique<data::RandomWindowSource>(tokens, 3, "s");
  data::BatchSource* raw = src.get();
  EXPECT_EQ(dp.rank_data(std::move(src), true).get(), raw);  // no rows of a global batch taken
  const json mine{{"kind", "stack_stream"}, {"epoch", 2}};
  EXPECT_EQ(dp.gather_data_state(mine, true), mine);
  EXPECT_EQ(dp.data_state_of_rank(mine, true), mine);
  EXPECT_EQ(dp.max_over_ranks(12345), 12345u);
  const json two{{"kind", "per_rank"}, {"world_size", 2}, {"ranks", json::array({mine, mine})}};
  EXPECT_EQ(dp.data_state_of_rank(two, false), two);  // another kind of source checks its own state
  try {
    dp.check_saved_data_world(two, "ck/trainer_state.json");
    FAIL() << "a two-rank position was accepted by one process";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "ck/trainer_state.json: key \"data\": the data position was saved by 2 ranks, each reading its own "
              "part of the data (its shards, a share that depends on the number of ranks), so it resumes on 2 ranks "
              "only, not on 1 rank (or pass --no-resume to start over)");
  }
  EXPECT_THROW(dp.data_state_of_rank(two, true), Error);
  dp.check_saved_data_world(mine, "ck/trainer_state.json");  // a single process's state: fine
}

TEST(MemoryPlan, ActivationArenaIsTheOneTheModelAllocates) {
  for (const model::ModelConfig& cfg : std::vector<model::ModelConfig>{train::testing::micro_config(), model::load_model_config("tiny")}) {
    for (int segments : {0, 2}) {
      model::Transformer m(cfg);
      m.init_weights(1);
      m.set_checkpoint_segments(segments);
      m.set_quant_state({model::QuantPhase::Hard, 0});
      const int B = 3, T = 16;
      std::vector<int32_t> in(B * T, 1), tg(B * T, 2);
      m.forward(in.data(), tg.data(), B, T);
      EXPECT_EQ(activation_arena_bytes(cfg, B, T, segments), m.peak_activation_bytes())
          << "hidden " << cfg.hidden_size << ", segments " << segments;
    }
  }
}

TEST(MemoryPlan, OptimizerShardFallsWithTheRanks8b) {
  const model::ModelConfig cfg = model::load_model_config("8b");
  const MemoryPlan one = memory_plan(cfg, 1, 4096, 0, 1), eight = memory_plan(cfg, 1, 4096, 0, 8);
  EXPECT_EQ(one.num_params, eight.num_params);
  EXPECT_GT(one.num_params, 7'000'000'000u);
  EXPECT_EQ(one.params_bytes, 4 * one.num_params);
  EXPECT_EQ(eight.grads_bytes, 4 * one.num_params);
  EXPECT_EQ(one.optimizer_bytes, 8 * one.num_params);
  // 1/8 of m and v, up to the 64-value alignment of the shards.
  EXPECT_LE(eight.optimizer_bytes, one.optimizer_bytes / 8 + 8 * 64 * 8);
  EXPECT_GE(eight.optimizer_bytes, one.optimizer_bytes / 8);
  EXPECT_EQ(one.activation_bytes, eight.activation_bytes);
  std::printf("8b preset, micro-batch 1 x 4096:\n  %s\n  %s\n", describe(one).c_str(), describe(eight).c_str());
  EXPECT_NE(describe(eight).find("memory per rank (8 ranks"), std::string::npos);
}
