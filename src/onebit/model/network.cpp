// Network<T>: construction, weight quantization per phase, and the whole-model forward/backward
// (segments, LM head, embedding). Layers: network_layer.cpp; activation arena: network_arena.cpp.
#include "onebit/model/network.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/model/linear.h"
#include "onebit/model/network_internal.h"

namespace onebit::model {

using namespace detail;

template <typename T, typename A>
Network<T, A>::Network(const ModelConfig& cfg, kernels::Ops<T, A>& ops) : cfg_(cfg), ops_(ops) {
  cfg_.validate("model config");
  layout_ = build_param_layout(cfg_);
  params_ = ops_.alloc(layout_.total);
  grads_ = ops_.alloc(layout_.total);
  fused_ = ops_.prefers_fused_projections();
  auto make = [&](int param, const std::string& module) {
    Linear lin;
    lin.param = param;
    lin.wq = to_weight_quant(cfg_.precision_of(module));
    lin.quantized_input = takes_int8_input(lin.wq) && cfg_.quantization.activation_bits == ActBits::Int8;
    return lin;
  };
  for (int l = 0; l < cfg_.num_hidden_layers; ++l) {
    const auto& P = layout_.layers[l];
    const std::string p = cat("model.layers.", l, ".");
    lin_.push_back({make(P.q, p + "self_attn.q_proj"), make(P.k, p + "self_attn.k_proj"),
                    make(P.v, p + "self_attn.v_proj"), make(P.o, p + "self_attn.o_proj"),
                    make(P.gate, p + "mlp.gate_proj"), make(P.up, p + "mlp.up_proj"),
                    make(P.down, p + "mlp.down_proj")});
    auto& Ls = lin_.back();
    // The projection groups' copies adjacent, so their backward can be one product (fusable_group).
    alloc_group_qbufs({&Ls[kQ], &Ls[kK], &Ls[kV]});
    alloc_group_qbufs({&Ls[kO]});
    alloc_group_qbufs({&Ls[kGate], &Ls[kUp]});
    alloc_group_qbufs({&Ls[kDown]});
  }
  embed_lin_ = make(layout_.embed, "model.embed_tokens");
  embed_lin_.quantized_input = false;  // a lookup has no activation input
  head_lin_ = make(layout_.lm_head, "lm_head");
  alloc_group_qbufs({&embed_lin_});
  alloc_group_qbufs({&head_lin_});
  size_t num_linears = 0;
  for_each_linear([&](int, Linear&) { ++num_linears; });
  scales_ = kernels::DeviceBuffer<kernels::QuantScale>(ops_, num_linears);
  size_t i = 0;
  for_each_linear([&](int, Linear& lin) { lin.scale = scales_.get() + i++; });
  code_counts_ = kernels::DeviceBuffer<int64_t>(ops_, 3);
}

template <typename T, typename A>
Network<T, A>::~Network() {
  free_arena();
  for (A* p : qbuf_blocks_) ops_.free_act(p);
  ops_.free(params_);
  ops_.free(grads_);
}

template <typename T, typename A>
void Network<T, A>::alloc_group_qbufs(std::initializer_list<Linear*> group) {
  // With A != T even an unquantized weight needs its A copy (on CUDA: the bf16 operand of the matmuls).
  auto needs = [&](const Linear* lin) { return lin->wq != kernels::WeightQuant::None || !std::is_same_v<A, T>; };
  // Each member at a 16-element boundary, as param_layout places the master weights (adjacent exactly
  // where the master weights are); the block ends with the last member.
  size_t end = 0;
  std::vector<std::pair<Linear*, size_t>> at;
  for (Linear* lin : group)
    if (needs(lin)) {
      const size_t offset = (end + 15) / 16 * 16;
      at.emplace_back(lin, offset);
      end = offset + layout_.info[lin->param].numel;
    }
  if (at.empty()) return;
  A* block = ops_.alloc_act(end);
  qbuf_blocks_.push_back(block);
  for (const auto& [lin, offset] : at) lin->qbuf = block + offset;
}

template <typename T, typename A>
void Network<T, A>::for_each_linear(const std::function<void(int, Linear&)>& f) {
  for (int l = 0; l < (int)lin_.size(); ++l)
    for (int j = 0; j < 7; ++j) f(l * 7 + j, lin_[l][j]);
  f(kEmbedId, embed_lin_);
  f(kHeadId, head_lin_);
}

template <typename T, typename A>
void Network<T, A>::init_weights(uint64_t seed) {
  std::vector<float> host(layout_.total, 0.0f);
  init_params(layout_, cfg_, seed, host.data());
  std::vector<T> conv(host.begin(), host.end());
  ops_.upload(params_, conv.data(), layout_.total);
  have_forward_ = false;
}

template <typename T, typename A>
void Network<T, A>::set_checkpoint_segments(int n) {
  OB_CHECK(n >= 0, "gradient checkpointing segments must be >= 0 (got ", n, ")");
  n = std::min(n, cfg_.num_hidden_layers);
  if (n != segments_) {
    segments_ = n;
    free_arena();  // the slot count depends on the segment length
  }
}

template <typename T, typename A>
void Network<T, A>::zero_grad() {
  ops_.zero(grads_, layout_.total);
}

// Counter 0 is the embedding output's mask, 1 + layer * kNumDropoutSites + site a layer site's.
template <typename T, typename A>
uint64_t Network<T, A>::dropout_seed(int layer, int site) const {
  return mix_seed(dropout_seed_, (uint64_t)layer * kNumDropoutSites + site + 1);
}

template <typename T, typename A>
uint64_t Network<T, A>::embedding_dropout_seed() const {
  return mix_seed(dropout_seed_, 0);
}

// ---------------------------------------------------------------- quantization

template <typename T, typename A>
bool Network<T, A>::act_quant_on(const Linear& lin) const {
  return lin.quantized_input && quant_.phase == QuantPhase::Hard;
}

template <typename T, typename A>
const A* Network<T, A>::input_for(const Linear& lin, const A* plain, const A* quant) const {
  return act_quant_on(lin) ? quant : plain;
}

template <typename T, typename A>
typename Network<T, A>::QuantJob Network<T, A>::scale_job(Linear& lin) {
  QuantJob j;
  j.w = w(lin.param);
  j.n = layout_.info[lin.param].numel;
  j.q = lin.wq;
  j.scale = lin.scale;
  j.with_scale = true;
  // transformers' max(mean|W|, 1e-5) for model_type "bitnet"
  j.clamped = cfg_.architecture == Architecture::BitNet && lin.wq == kernels::WeightQuant::Ternary;
  return j;
}

template <typename T, typename A>
void Network<T, A>::prepare_weights() {
  // Every linear's effective weight in one call (on a GPU a few launches for all of them).
  std::vector<QuantJob> jobs;
  for_each_linear([&](int, Linear& lin) {
    T* W = w(lin.param);
    const size_t n = layout_.info[lin.param].numel;
    lin.int_path = false;
    if (quant_.phase == QuantPhase::FullPrecision || lin.wq == kernels::WeightQuant::None) {
      if constexpr (std::is_same_v<A, T>) {
        lin.eff = W;
      } else {  // the master weight cast to A, no quantization
        QuantJob j;
        j.w = W;
        j.n = n;
        j.q = kernels::WeightQuant::None;
        j.scale = lin.scale;
        j.out = lin.qbuf;
        jobs.push_back(j);
        lin.eff = lin.qbuf;
      }
      return;
    }
    const bool soft = quant_.phase == QuantPhase::Soft &&
                      (lin.wq == kernels::WeightQuant::Ternary || lin.wq == kernels::WeightQuant::Binary);
    QuantJob j = scale_job(lin);
    // k -> 0 makes q_soft vanish (that is the formula); a tiny floor only keeps "soft" distinct from "hard".
    j.soft_k = soft ? std::max(quant_.k, 1e-6f) : 0.0f;
    j.out = lin.qbuf;
    jobs.push_back(j);
    lin.eff = lin.qbuf;
  });
  // Asked for (request_weight_stats): the codes are counted in this pass, for the next weight_stats.
  int64_t* counts = nullptr;
  if (count_next_ && quant_.phase != QuantPhase::FullPrecision) {
    code_counts_.zero();
    counts = code_counts_.get();
    counted_ = true;
    counts_read_ = false;
  }
  count_next_ = false;
  ops_.weight_quantize_many(jobs.data(), jobs.size(), counts);
  // Weights change only at the optimizer step, so one pack per forward serves every use in it
  // (and the recomputed forwards of checkpointed segments). The embedding is a lookup, never packed.
  if (quant_.phase != QuantPhase::Hard) return;
  for_each_linear([&](int, Linear& lin) {
    if (lin.wq == kernels::WeightQuant::Ternary && lin.quantized_input) {
      const auto& shape = layout_.info[lin.param].shape;
      lin.int_path = ops_.pack_ternary(lin.packed, lin.eff, (int)shape[0], (int)shape[1], lin.scale);
    }
  });
}

template <typename T, typename A>
const kernels::PackedTernary* Network<T, A>::packed_for(const Linear& lin) const {
  return lin.int_path && act_quant_on(lin) ? lin.packed.get() : nullptr;
}

template <typename T, typename A>
void Network<T, A>::linear_forward(const Linear& lin, const A* x, int in, int N, A* y, int out) {
  model::linear_forward(ops_, x, lin.eff, N, in, out, y, packed_for(lin));
}

template <typename T, typename A>
WeightStats Network<T, A>::weight_stats() {
  // Counted on the backend into one int64[3], read once: by the forward that request_weight_stats
  // asked (the weights that forward used), else here, with the scales recomputed (the weights may
  // have changed since the last forward) into the Linears' slots, which the next forward rewrites.
  if (!counted_) {
    code_counts_.zero();
    std::vector<QuantJob> jobs;
    for_each_linear([&](int, Linear& lin) {
      if (lin.wq == kernels::WeightQuant::Ternary || lin.wq == kernels::WeightQuant::Binary)
        jobs.push_back(scale_job(lin));
    });
    ops_.weight_quantize_many(jobs.data(), jobs.size(), code_counts_.get());
  }
  int64_t counts[3] = {0, 0, 0};
  if (counted_ && counts_read_)
    std::copy(counts_host_, counts_host_ + 3, counts);
  else
    code_counts_.download(counts, 3);
  counted_ = counts_read_ = false;
  WeightStats s;
  const double total = (double)(counts[0] + counts[1] + counts[2]);
  if (total > 0) {
    s.neg = counts[0] / total;
    s.zero = counts[1] / total;
    s.pos = counts[2] / total;
  }
  return s;
}

// ---------------------------------------------------------------- whole model

template <typename T, typename A>
void Network<T, A>::run_layers_forward() {
  const int L = cfg_.num_hidden_layers, nseg = segments_ == 0 ? 1 : segments_;
  const size_t nd = (size_t)B_ * T_ * cfg_.hidden_size;
  for (int s = 0; s < nseg; ++s) {
    const int lo = s * L / nseg, hi = (s + 1) * L / nseg;
    const A* x = boundary_[s];
    for (int l = lo; l < hi; ++l) {
      LayerActs& a = slots_[l - lo];
      layer_forward(l, a, x, a.x_out);
      x = a.x_out;
    }
    ops_.copy_act(boundary_[s + 1], x, nd);
  }
}

template <typename T, typename A>
void Network<T, A>::head_forward(bool want_grad, double* loss_sum) {
  const int N = B_ * T_, d = cfg_.hidden_size, V = cfg_.vocab_size;
  const int nseg = segments_ == 0 ? 1 : segments_;
  const bool q = act_quant_on(head_lin_);
  ops_.rmsnorm_forward(xf_, q ? xf_q_ : nullptr, xf_rstd_, boundary_[nseg], w(layout_.final_norm), N, d,
                       cfg_.rms_norm_eps);
  const A* in = q ? xf_q_ : xf_;
  const T dscale = scored_ > 0 ? T(1) / T(scored_) : T(0);
  if (want_grad) ops_.zero(head_dw_, (size_t)V * d);
  lm_head_loss(ops_, in, head_lin_.eff, targets_.get(), N, d, V, chunk_rows_, dscale, want_grad, logit_chunk_,
               row_loss_, loss_sum, dxf_, head_dw_, packed_for(head_lin_));
  head_grads_ready_ = want_grad;
}

template <typename T, typename A>
void Network<T, A>::forward_async(const int32_t* tokens, const int32_t* targets, int B, int Tn) {
  ensure_arena(B, Tn);
  prepare_weights();
  const size_t N = (size_t)B * Tn;
  int64_t count = 0;
  for (size_t n = 0; n < N; ++n) {
    OB_CHECK(targets[n] < cfg_.vocab_size, "forward: target id ", targets[n], " at position ", n,
             " is outside the vocabulary [0, ", cfg_.vocab_size, ")");
    count += targets[n] >= 0;
  }
  check_tokens(tokens, N);
  tokens_.upload(tokens, N);
  targets_.upload(targets, N);
  scored_ = count;
  const size_t slot = pending_scored_.size();
  if (slot == loss_slots_.size()) {  // grow (rare: the first step, or a longer eval): keep what is pending
    std::vector<double> kept(slot);
    if (slot) loss_slots_.download(kept.data(), slot);
    loss_slots_ = kernels::DeviceBuffer<double>(ops_, std::max<size_t>(8, 2 * slot));
    if (slot) loss_slots_.upload(kept.data(), slot);
  }
  double* loss_sum = loss_slots_.get() + slot;
  ops_.zero_bytes(loss_sum, sizeof(double));
  pending_scored_.push_back(count);
  ops_.embedding_forward(boundary_[0], tokens_.get(), embed_lin_.eff, (int)N, cfg_.hidden_size, cfg_.vocab_size);
  embedding_dropout(boundary_[0]);
  run_layers_forward();
  head_forward(training_, loss_sum);
  have_forward_ = true;
}

template <typename T, typename A>
void Network<T, A>::embedding_dropout(A* x) {
  const float p = training_ ? cfg_.dropout : 0.0f;
  if (p <= 0.0f) return;  // no call at all: without dropout the embedding path is what it was
  // x = mask ∘ x in place: residual_backward's dy = scale * mask * dout with scale 1 (elementwise, so
  // dy may alias dout).
  ops_.residual_backward(x, x, T(1), p, embedding_dropout_seed(), (size_t)B_ * T_ * cfg_.hidden_size);
}

template <typename T, typename A>
void Network<T, A>::check_tokens(const int32_t* tokens, size_t n) const {
  // On the host, before the upload: a device backend cannot report a bad id from inside a kernel.
  for (size_t i = 0; i < n; ++i)
    OB_CHECK(tokens[i] >= 0 && tokens[i] < cfg_.vocab_size, "embedding: token id ", tokens[i], " at position ", i,
             " is outside the vocabulary [0, ", cfg_.vocab_size, ")");
}

template <typename T, typename A>
std::vector<double> Network<T, A>::take_losses() {
  const size_t n = pending_scored_.size();
  std::vector<double> sums(n);
  if (n) loss_slots_.download(sums.data(), n);
  if (counted_ && !counts_read_) {  // the forward that counted is done: read its counts now, while waiting anyway
    code_counts_.download(counts_host_, 3);
    counts_read_ = true;
  }
  for (size_t i = 0; i < n; ++i) sums[i] = pending_scored_[i] > 0 ? sums[i] / (double)pending_scored_[i] : 0.0;
  pending_scored_.clear();
  return sums;
}

template <typename T, typename A>
double Network<T, A>::forward(const int32_t* tokens, const int32_t* targets, int B, int Tn) {
  forward_async(tokens, targets, B, Tn);
  return take_losses().back();
}

template <typename T, typename A>
void Network<T, A>::backward(T loss_scale) {
  OB_CHECK(have_forward_, "backward() needs a forward() on the same batch first");
  const int N = B_ * T_, d = cfg_.hidden_size, V = cfg_.vocab_size, L = cfg_.num_hidden_layers;
  const int nseg = segments_ == 0 ? 1 : segments_;
  if (!head_grads_ready_) head_forward(true, nullptr);
  ops_.axpy(g(layout_.lm_head), loss_scale, head_dw_, (size_t)V * d);
  ops_.scale_act(dA_, loss_scale, dxf_, (size_t)N * d);
  ops_.zero_act(dres_, (size_t)N * d);
  ops_.rmsnorm_backward(dres_, g(layout_.final_norm), dA_, boundary_[nseg], w(layout_.final_norm), xf_rstd_, N, d);
  report_grads_ready(L);
  for (int s = nseg - 1; s >= 0; --s) {
    const int lo = s * L / nseg, hi = (s + 1) * L / nseg;
    if (s != nseg - 1) {  // the last segment's activations are still in the slots from forward()
      const A* x = boundary_[s];
      for (int l = lo; l < hi; ++l) {
        LayerActs& a = slots_[l - lo];
        layer_forward(l, a, x, a.x_out);
        x = a.x_out;
      }
    }
    for (int l = hi - 1; l >= lo; --l) {
      layer_backward(l, slots_[l - lo], dres_);
      report_grads_ready(l);
    }
  }
  embedding_dropout(dres_);  // the mask is its own transpose: the gradient takes the forward's
  ops_.embedding_backward(g(layout_.embed), dres_, tokens_.get(), N, d);
  report_grads_ready(-1);
  have_forward_ = false;  // recomputed segments overwrote the slots; a second backward would be wrong
}

template <typename T, typename A>
void Network<T, A>::report_grads_ready(int l) {
  if (!grads_ready_) return;
  // The arena holds the embeddings, the layers in order, then the final norm and an untied head
  // (param_layout.cpp): a layer's range runs from its first tensor to the next layer's (padding
  // included), so the ranges tile the arena. A tied head is the embeddings' range, reported last.
  const int L = cfg_.num_hidden_layers;
  auto start = [&](int k) {  // where the ranges of layer k (L: the tail) begin
    return k == L ? layout_.info[layout_.final_norm].offset : layout_.info[layout_.layers[k].input_norm].offset;
  };
  const size_t lo = l < 0 ? 0 : start(l), hi = l < 0 ? start(0) : l == L ? layout_.total : start(l + 1);
  grads_ready_(lo, hi - lo);
}

template <typename T, typename A>
void Network<T, A>::logits(const int32_t* tokens, int B, int Tn, T* out, bool last_only) {
  ensure_arena(B, Tn);
  prepare_weights();
  const int N = B * Tn, d = cfg_.hidden_size, V = cfg_.vocab_size;
  const int nseg = segments_ == 0 ? 1 : segments_;
  const bool saved_training = training_;
  training_ = false;
  check_tokens(tokens, (size_t)N);
  tokens_.upload(tokens, (size_t)N);
  ops_.embedding_forward(boundary_[0], tokens_.get(), embed_lin_.eff, N, d, V);
  run_layers_forward();
  training_ = saved_training;
  const bool q = act_quant_on(head_lin_);
  ops_.rmsnorm_forward(xf_, q ? xf_q_ : nullptr, xf_rstd_, boundary_[nseg], w(layout_.final_norm), N, d,
                       cfg_.rms_norm_eps);
  const A* in = q ? xf_q_ : xf_;
  // logit_chunk_ (A, backend) -> out (T, host).
  std::vector<A> staging;
  auto fetch = [&](T* dst, size_t n) {
    if constexpr (std::is_same_v<A, T>) {
      ops_.download(dst, logit_chunk_, n);
    } else {
      staging.resize(n);
      ops_.download_bytes(staging.data(), logit_chunk_, n * sizeof(A));
      for (size_t i = 0; i < n; ++i) dst[i] = (T)kernels::to_float(staging[i]);
    }
  };
  if (last_only) {
    for (int b = 0; b < B; ++b) {
      linear_forward(head_lin_, in + ((size_t)b * Tn + Tn - 1) * d, d, 1, logit_chunk_, V);
      fetch(out + (size_t)b * V, V);
    }
  } else {
    for (int r0 = 0; r0 < N; r0 += chunk_rows_) {
      const int R = std::min(chunk_rows_, N - r0);
      linear_forward(head_lin_, in + (size_t)r0 * d, d, R, logit_chunk_, V);
      fetch(out + (size_t)r0 * V, (size_t)R * V);
    }
  }
  have_forward_ = false;
}

template class Network<float>;
template class Network<double>;
template class Network<float, kernels::bf16>;

}  // namespace onebit::model
