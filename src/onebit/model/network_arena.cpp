// Network<T>: the activation arena, sized from (config, B, T, checkpoint segments) and reused.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/model/network.h"
#include "onebit/model/network_internal.h"

namespace onebit::model {

using namespace detail;

template <typename T, typename A>
void Network<T, A>::free_arena() {
  if (act_arena_) ops_.free_act(act_arena_);
  if (stat_arena_) ops_.free(stat_arena_);
  act_arena_ = nullptr;
  stat_arena_ = nullptr;
  act_count_ = stat_count_ = 0;
  capB_ = capT_ = 0;
  slots_.clear();
  boundary_.clear();
  have_forward_ = false;
}

template <typename T, typename A>
void Network<T, A>::ensure_arena(int B, int Tn) {
  OB_CHECK(B > 0 && Tn > 0, "forward: batch and sequence length must be positive (got B=", B, ", T=", Tn, ")");
  OB_CHECK(Tn <= cfg_.max_position_embeddings, "forward: sequence length ", Tn, " exceeds max_position_embeddings (",
           cfg_.max_position_embeddings, ")");
  // The kernels take row counts as int: B*T rows, and B*T*heads rows for the per-head q/k norms.
  const int64_t rows = (int64_t)B * Tn * std::max(cfg_.num_attention_heads, cfg_.num_key_value_heads);
  OB_CHECK(rows <= INT32_MAX, "forward: batch ", B, " x sequence ", Tn, " x ", cfg_.num_attention_heads,
           " heads = ", rows, " rows is more than the kernels index (2^31-1); use a smaller batch");
  B_ = B;
  T_ = Tn;
  if (act_arena_ && B <= capB_ && Tn <= capT_) return;
  // Grow geometrically: generation calls logits() with one more token each time.
  const int newB = std::max(B, capB_), newT = std::min(cfg_.max_position_embeddings, std::max(Tn, 2 * capT_));
  free_arena();
  B = newB;
  Tn = newT;
  const size_t N = (size_t)B * Tn, d = cfg_.hidden_size, ff = cfg_.intermediate_size, H = cfg_.num_attention_heads,
               KV = cfg_.num_key_value_heads, hd = cfg_.head_dim(), kvd = KV * hd, V = cfg_.vocab_size;
  const int L = cfg_.num_hidden_layers;
  const int nseg = segments_ == 0 ? 1 : segments_;
  int max_len = 0;
  for (int s = 0; s < nseg; ++s) max_len = std::max(max_len, (s + 1) * L / nseg - s * L / nseg);
  bool any_q = false;
  for_each_linear([&](int, Linear& lin) { any_q = any_q || lin.quantized_input; });
  {
    size_t rows = ops_.logits_chunk_elems() / V;
    const size_t mult = (size_t)ops_.logits_chunk_row_multiple();
    if (rows >= mult) rows -= rows % mult;
    chunk_rows_ = (int)std::max<size_t>(1, std::min<size_t>(N, rows));
  }

  // Two passes over the same plan: the first only measures, the second hands out pointers. Activations
  // (A) and per-row statistics (T) come from two arenas.
  A* abase = nullptr;
  T* sbase = nullptr;
  size_t aused = 0, sused = 0;
  auto take = [&](size_t n, bool want = true) -> A* {
    if (!want) return nullptr;
    A* p = abase ? abase + aused : nullptr;
    aused += (n + 15) / 16 * 16;
    return p;
  };
  auto take_stat = [&](size_t n, bool want = true) -> T* {
    if (!want) return nullptr;
    T* p = sbase ? sbase + sused : nullptr;
    sused += (n + 15) / 16 * 16;
    return p;
  };
  // With activations not in T (the bf16 CUDA backend), buffers that no phase reads at the same time
  // share memory: a norm's output and its int8 quantization when every layer feeds them to its q/k/v
  // (or gate/up) linears alike (only one of the two is read in any phase), a sub-norm's output and its
  // quantization, and without sub-norms the MLP activation and its quantization (quantized in place).
  // The kernels write the quantized values after the plain ones, so the buffer holds what the phase
  // reads. The CPU backends keep them apart, bitwise as before (their test decorators watch both).
  bool share = !std::is_same_v<A, T>, uniform_qkv = true, uniform_mlp = true;
  for (const auto& Ls : lin_) {
    uniform_qkv = uniform_qkv && Ls[kQ].quantized_input == Ls[kK].quantized_input &&
                  Ls[kQ].quantized_input == Ls[kV].quantized_input;
    uniform_mlp = uniform_mlp && Ls[kGate].quantized_input == Ls[kUp].quantized_input;
  }
  for (int pass = 0; pass < 2; ++pass) {
    aused = sused = 0;
    slots_.assign(max_len, LayerActs{});
    for (auto& a : slots_) {
      a.rstd1 = take_stat(N);
      a.h1 = take(N * d);
      a.h1q = share && uniform_qkv && any_q ? a.h1 : take(N * d, any_q);
      a.q = take(N * d);
      a.k = take(N * kvd);
      a.v = take(N * kvd);
      a.qr = take(N * d);
      a.kr = take(N * kvd);
      a.q_rstd = take_stat(N * H, cfg_.qk_norm);
      a.k_rstd = take_stat(N * KV, cfg_.qk_norm);
      a.lse = take_stat((size_t)B * H * Tn);
      a.att = take(N * d);
      a.att_n = take(N * d, cfg_.sub_ln);
      a.att_rstd = take_stat(N, cfg_.sub_ln);
      a.att_q = share && cfg_.sub_ln && any_q ? a.att_n : take(N * d, any_q);
      a.x_mid = take(N * d);
      a.rstd2 = take_stat(N);
      a.h2 = take(N * d);
      a.h2q = share && uniform_mlp && any_q ? a.h2 : take(N * d, any_q);
      a.gate = take(N * ff);
      a.up = take(N * ff);
      a.act = take(N * ff);
      a.act_n = take(N * ff, cfg_.sub_ln);
      a.act_rstd = take_stat(N, cfg_.sub_ln);
      a.act_q = share && any_q ? (cfg_.sub_ln ? a.act_n : a.act) : take(N * ff, any_q);
      a.x_out = take(N * d);
    }
    boundary_.assign(nseg + 1, nullptr);
    for (auto& b : boundary_) b = take(N * d);
    cos_ = take_stat((size_t)Tn * hd / 2);
    sin_ = take_stat((size_t)Tn * hd / 2);
    xf_ = take(N * d);
    xf_q_ = take(N * d, head_lin_.quantized_input);
    xf_rstd_ = take_stat(N);
    dxf_ = take(N * d);
    logit_chunk_ = take((size_t)chunk_rows_ * V);
    row_loss_ = take_stat(N);
    head_dw_ = take_stat(V * d);
    tmp_d_ = take(N * d);
    dres_ = take(N * d);
    dA_ = take(N * d);
    dB_ = take(N * d);
    dC_ = take(N * d);
    // Taken consecutively, so [dq_, dv_ + N kvd) holds the fused Q/K/V gradient [N, d + 2 kvd] and
    // dF1_..dF3_ the fused gate/up gradient [N, 2 ff] at dF1_ or dF2_ (layer_backward).
    dq_ = take(N * d);
    dk_ = take(N * kvd);
    dv_ = take(N * kvd);
    dqr_ = take(N * d);
    dkr_ = take(N * kvd);
    dF1_ = take(N * ff);
    dF2_ = take(N * ff);
    dF3_ = take(N * ff);
    if (pass == 0) {
      act_arena_ = ops_.alloc_act(aused);
      stat_arena_ = ops_.alloc(sused);
      act_count_ = aused;
      stat_count_ = sused;
      abase = act_arena_;
      sbase = stat_arena_;
    }
  }
  capB_ = B;
  capT_ = Tn;
  tokens_ = kernels::DeviceBuffer<int32_t>(ops_, N);
  targets_ = kernels::DeviceBuffer<int32_t>(ops_, N);
  // RoPE tables in double, then cast: positions 0..Tn-1, frequencies theta^(-2i/hd).
  std::vector<T> c((size_t)Tn * hd / 2), s((size_t)Tn * hd / 2);
  for (size_t t = 0; t < (size_t)Tn; ++t)
    for (size_t i = 0; i < hd / 2; ++i) {
      const double inv = std::pow((double)cfg_.rope_theta, -2.0 * (double)i / (double)hd);
      c[t * (hd / 2) + i] = (T)std::cos(t * inv);
      s[t * (hd / 2) + i] = (T)std::sin(t * inv);
    }
  ops_.upload(cos_, c.data(), c.size());
  ops_.upload(sin_, s.data(), s.size());
}

template void Network<float>::ensure_arena(int, int);
template void Network<float>::free_arena();
template void Network<double>::ensure_arena(int, int);
template void Network<double>::free_arena();
template void Network<float, kernels::bf16>::ensure_arena(int, int);
template void Network<float, kernels::bf16>::free_arena();

}  // namespace onebit::model
