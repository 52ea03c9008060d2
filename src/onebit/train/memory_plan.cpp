#include "onebit/train/memory_plan.h"

#include <algorithm>
#include <cstdio>

#include "onebit/core/error.h"
#include "onebit/dist/communicator.h"
#include "onebit/model/param_layout.h"

namespace onebit::train {

uint64_t activation_arena_bytes(const model::ModelConfig& cfg, int B, int Tn, int segments) {
  // Mirrors Network::ensure_arena's plan (model/network_arena.cpp) with every linear's int8 input
  // copy present (Hard phase) and the head's input unquantized (the head stays f32); a test pins the
  // two together. Every buffer is padded to 16 values.
  const uint64_t N = static_cast<uint64_t>(B) * Tn, d = cfg.hidden_size, ff = cfg.intermediate_size,
                 H = cfg.num_attention_heads, KV = cfg.num_key_value_heads, hd = cfg.head_dim(), kvd = KV * hd,
                 V = cfg.vocab_size;
  const int L = cfg.num_hidden_layers;
  const int nseg = segments == 0 ? 1 : segments;
  int max_len = 0;
  for (int s = 0; s < nseg; ++s) max_len = std::max(max_len, (s + 1) * L / nseg - s * L / nseg);
  const uint64_t chunk_rows = std::max<uint64_t>(1, std::min<uint64_t>(N, (uint64_t{8} << 20) / V));
  uint64_t used = 0;
  auto take = [&](uint64_t n, bool want = true) {
    if (want) used += (n + 15) / 16 * 16;
  };
  for (int l = 0; l < max_len; ++l) {
    take(N), take(N * d), take(N * d);                         // rstd1, h1, h1q
    take(N * d), take(N * kvd), take(N * kvd);                 // q, k, v
    take(N * d), take(N * kvd);                                // qr, kr
    take(N * H, cfg.qk_norm), take(N * KV, cfg.qk_norm);       // q_rstd, k_rstd
    take(static_cast<uint64_t>(B) * H * Tn);                   // lse
    take(N * d), take(N * d, cfg.sub_ln), take(N, cfg.sub_ln), take(N * d);  // att, att_n, att_rstd, att_q
    take(N * d), take(N), take(N * d), take(N * d);            // x_mid, rstd2, h2, h2q
    take(N * ff), take(N * ff), take(N * ff);                  // gate, up, act
    take(N * ff, cfg.sub_ln), take(N, cfg.sub_ln), take(N * ff);  // act_n, act_rstd, act_q
    take(N * d);                                               // x_out
  }
  for (int b = 0; b < nseg + 1; ++b) take(N * d);  // segment boundaries
  take(static_cast<uint64_t>(Tn) * hd / 2), take(static_cast<uint64_t>(Tn) * hd / 2);  // RoPE tables
  take(N * d), take(N), take(N * d);  // xf, xf_rstd, dxf
  take(chunk_rows * V), take(N), take(V * d);  // logit chunk, row losses, head dW
  for (int i = 0; i < 6; ++i) take(N * d);  // tmp_d, dres, dA, dB, dC, dq
  take(N * kvd), take(N * kvd), take(N * d), take(N * kvd);  // dk, dv, dqr, dkr
  take(N * ff), take(N * ff), take(N * ff);  // dF1..3
  return used * sizeof(float);
}

MemoryPlan memory_plan(const model::ModelConfig& cfg, int batch_size, int seq_len, int checkpoint_segments,
                       int world_size) {
  MemoryPlan p;
  p.world_size = world_size;
  p.num_params = model::build_param_layout(cfg).total;
  p.params_bytes = p.num_params * sizeof(float);
  p.grads_bytes = p.num_params * sizeof(float);
  // The largest shard (rank 0's or the last's) is what a rank must have room for.
  uint64_t shard = 0;
  for (size_t c : dist::split_counts(p.num_params, world_size)) shard = std::max<uint64_t>(shard, c);
  p.optimizer_bytes = 2 * shard * sizeof(float);
  p.activation_bytes = activation_arena_bytes(cfg, batch_size, seq_len, checkpoint_segments);
  return p;
}

std::string describe(const MemoryPlan& p) {
  auto gib = [](uint64_t b) {
    char buf[32];
    const double mib = static_cast<double>(b) / (1024.0 * 1024.0);
    if (mib < 1024.0) std::snprintf(buf, sizeof buf, "%.2f MiB", mib);
    else std::snprintf(buf, sizeof buf, "%.2f GiB", mib / 1024.0);
    return std::string(buf);
  };
  return cat("memory per rank (", p.world_size, p.world_size == 1 ? " rank" : " ranks", ", ", p.num_params,
             " params): params ", gib(p.params_bytes), ", grads ", gib(p.grads_bytes), ", AdamW shard ",
             gib(p.optimizer_bytes), " (ZeRO-1, 1/", p.world_size, " of m and v), activations ",
             gib(p.activation_bytes), "; total ", gib(p.total_bytes()));
}

}  // namespace onebit::train
