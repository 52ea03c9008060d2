#pragma once
// The memory one data-parallel rank needs for training, before anything is allocated, so that a run
// that cannot fit is known (and the 8b preset's per-GPU needs can be read) up front:
//   params      f32 master weights, whole on every rank
//   grads       f32, whole on every rank (all-reduced in buckets)
//   optimizer   AdamW m and v for this rank's shard of the arena only (ZeRO-1): falls with the ranks
//   activations the model's activation arena for one micro-batch (Network::ensure_arena's plan for
//               the Hard phase, which holds the most: the int8 copies of the activations)
#include <cstdint>
#include <string>

#include "onebit/model/config.h"

namespace onebit::train {

struct MemoryPlan {
  int world_size = 1;
  uint64_t num_params = 0;
  uint64_t params_bytes = 0, grads_bytes = 0, optimizer_bytes = 0, activation_bytes = 0;
  uint64_t total_bytes() const { return params_bytes + grads_bytes + optimizer_bytes + activation_bytes; }
};

// checkpoint_segments as --gradient-checkpointing-segments (0: every layer's activations kept).
MemoryPlan memory_plan(const model::ModelConfig& cfg, int batch_size, int seq_len, int checkpoint_segments,
                       int world_size);

// Bytes of Network<float>'s activation arena for a micro-batch of B x T in the Hard phase.
uint64_t activation_arena_bytes(const model::ModelConfig& cfg, int B, int T, int checkpoint_segments);

// One line: "memory per rank (8 ranks, N params): params 29.92 GiB, grads 29.92 GiB, AdamW shard 7.48 GiB
// (ZeRO-1, 1/8 of m and v), activations ...; total ..." (MiB below 1 GiB).
std::string describe(const MemoryPlan& plan);

}  // namespace onebit::train
