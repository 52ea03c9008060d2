#pragma once
// The decoder network, templated on the backend's parameter type T and activation type A (kernels.h):
// Transformer runs Network<float> on the CPU backends and Network<float, bf16> on CUDA; tests run
// Network<double> on the reference backend for finite-difference checks.
// Every layer's forward and backward is written out by hand; all activations live in one arena sized
// from (config, B, T, checkpoint segments). Everything lives in the backend's memory (params, grads,
// activations, token ids, quantization scales, loss sums, code counts): host arrays cross only at
// forward/logits (the batch in), take_losses/weight_stats (the logged numbers out) and init_weights.
#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "onebit/kernels/kernels.h"
#include "onebit/model/config.h"
#include "onebit/model/param_layout.h"
#include "onebit/model/transformer.h"

namespace onebit::model {

template <typename T, typename A = T>
class Network {
 public:
  Network(const ModelConfig& cfg, kernels::Ops<T, A>& ops);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  const ModelConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  kernels::Ops<T, A>& ops() const { return ops_; }
  T* params() { return params_; }  // backend memory
  T* grads() { return grads_; }    // backend memory
  size_t num_params() const { return layout_.total; }

  void init_weights(uint64_t seed);
  void set_quant_state(QuantState s) { quant_ = s; }
  QuantState quant_state() const { return quant_; }
  void set_checkpoint_segments(int n);
  int checkpoint_segments() const { return segments_; }
  void set_training(bool t) { training_ = t; }
  void set_dropout_seed(uint64_t s) { dropout_seed_ = s; }

  // Uploads the batch (host arrays; targets checked here) and runs the forward; the summed loss stays
  // in a backend slot until take_losses(). Keeps what backward() needs.
  void forward_async(const int32_t* tokens, const int32_t* targets, int B, int Tn);
  // The mean loss (over scored targets; 0 if none) of every forward_async since the last call, in
  // order: one download.
  std::vector<double> take_losses();
  // forward_async, then take_losses: returns this forward's mean loss (earlier pending ones are read too).
  double forward(const int32_t* tokens, const int32_t* targets, int B, int Tn);
  void backward(T loss_scale);
  void set_grads_ready_hook(Transformer::GradsReadyHook hook) { grads_ready_ = std::move(hook); }
  void zero_grad();
  // Logits as T on the host (converted from A where they differ).
  void logits(const int32_t* tokens, int B, int Tn, T* out, bool last_only);
  size_t peak_activation_bytes() const { return act_count_ * sizeof(A) + stat_count_ * sizeof(T); }
  WeightStats weight_stats();
  // The next forward counts the codes of the ternary/binary weights it quantizes (in the same pass),
  // and the next weight_stats returns those counts instead of a pass of its own.
  void request_weight_stats() { count_next_ = true; }
  // The Q/K/V and gate/up projections' backward as one dx and one dW product per group where the group
  // allows it (fusable_group): the backend's preference (Ops::prefers_fused_projections) unless set here.
  // The same gradients either way, up to the summation order of the products.
  void set_fused_projections(bool on) { fused_ = on; }
  bool fused_projections() const { return fused_; }

 private:
  struct LayerActs {  // activations in A; per-row statistics (rstd, lse) in T
    A *x_in = nullptr, *h1 = nullptr, *h1q = nullptr;
    A *q = nullptr, *k = nullptr, *v = nullptr, *qr = nullptr, *kr = nullptr;
    A *att = nullptr, *att_n = nullptr, *att_q = nullptr;
    A *x_mid = nullptr, *h2 = nullptr, *h2q = nullptr;
    A *gate = nullptr, *up = nullptr, *act = nullptr, *act_n = nullptr, *act_q = nullptr;
    bool act_stored = true;  // false where the forward's one-pass gated + sub-norm left act unwritten
    A* x_out = nullptr;
    T *rstd1 = nullptr, *q_rstd = nullptr, *k_rstd = nullptr, *lse = nullptr, *att_rstd = nullptr, *rstd2 = nullptr,
      *act_rstd = nullptr;
  };
  struct Linear {  // one use of a weight matrix
    int param = -1;
    kernels::WeightQuant wq = kernels::WeightQuant::None;
    bool quantized_input = false;  // int8 activation quant applies (Hard phase only)
    A* eff = nullptr;              // effective weight for this forward (params, or the quantized copy)
    A* qbuf = nullptr;             // quantized copy (non-F32 precisions, and every weight when A != T), in qbuf_blocks_
    kernels::QuantScale* scale = nullptr;  // this weight's scale, in the backend's memory (scales_)
    // Hard ternary with int8 input on a backend with an integer path: this forward runs
    // ops.ternary_linear_forward on `packed` (packed from eff by prepare_weights) instead of gemm.
    std::unique_ptr<kernels::PackedTernary> packed;
    bool int_path = false;
  };

  void ensure_arena(int B, int Tn);
  void check_tokens(const int32_t* tokens, size_t n) const;  // ids in [0, vocab), else an error naming one
  void free_arena();
  void prepare_weights();
  using QuantJob = typename kernels::Ops<T, A>::QuantJob;
  // The job that writes lin's per-tensor scale into lin.scale, by the config's architecture (BitNet:
  // clamped eps); prepare_weights adds the effective-weight output, weight_stats the code counts.
  QuantJob scale_job(Linear& lin);
  bool act_quant_on(const Linear& lin) const;
  const A* input_for(const Linear& lin, const A* plain, const A* quant) const;
  // y[N,out] = x[N,in] · W_effᵀ: the integer path where prepare_weights packed the weight, else gemm.
  void linear_forward(const Linear& lin, const A* x, int in, int N, A* y, int out);
  // The packed weight when the integer path applies to `lin` (packed and fed int8 activations), else null.
  const kernels::PackedTernary* packed_for(const Linear& lin) const;
  // One member of a projection group's forward: y[N, out] = x · lin's W_effᵀ.
  struct GroupOut {
    const Linear* lin;
    A* y;
    int out;
  };
  // The forwards of a projection group (at most 3 members, reading `plain`, or `quant` where their activation
  // quantization is on): one backend product where every member takes the integer path and the backend has one
  // for them (Ops::ternary_linear_forward_group), else each member's linear_forward, in order.
  void group_forward(std::initializer_list<GroupOut> group, const A* plain, const A* quant, int in, int N);
  void layer_forward(int l, LayerActs& a, const A* x_in, A* x_out);
  void layer_backward(int l, LayerActs& a, A* dres);
  // Runs every layer from boundary_[0] (the embeddings); segment boundaries land in boundary_.
  void run_layers_forward();
  // The final norm and the fused LM head + loss over the uploaded targets; *loss_sum (backend) += loss.
  void head_forward(bool want_grad, double* loss_sum);
  uint64_t dropout_seed(int layer, int site) const;  // site: DropoutSite (network_internal.h)
  uint64_t embedding_dropout_seed() const;
  // Training with dropout: x[B*T, hidden] = mask ∘ x (the embedding output forward, its gradient backward).
  void embedding_dropout(A* x);
  const A* o_input(int l, const LayerActs& a) const;
  // model::linear_backward (linear.h) on this network's ops with lin's effective weight, and the backend's
  // ternary backward where the forward took the integer path (packed_for).
  void linear_backward(const Linear& lin, const A* dy, int out, const A* x, int in, int N, A* dx, T dx_beta, T* dw);
  // Whether the linears of a projection group (members in order, all reading x this phase) can run their
  // backward as one product pair: fusion on, no integer path, effective weights and gradients each adjacent
  // in member order (so [W1; W2; ...] is one row-major matrix), widths multiples of 8.
  // Its backward is then linear_backward of the first member with out = the members' total rows and dy
  // their output gradients as column blocks: dx = dy · [W1; W2; ...], [dW1; dW2; ...] += dyᵀ · x.
  bool fusable_group(std::initializer_list<const Linear*> group) const;
  // One block of effective-weight copies for the members that need one, in order (adjacent: fusable).
  void alloc_group_qbufs(std::initializer_list<Linear*> group);
  const A* down_input(int l, const LayerActs& a) const;
  void for_each_linear(const std::function<void(int id, Linear&)>& f);
  T* w(int param) { return params_ + layout_.info[param].offset; }
  T* g(int param) { return grads_ + layout_.info[param].offset; }

  ModelConfig cfg_;
  kernels::Ops<T, A>& ops_;
  ParamLayout layout_;
  T* params_ = nullptr;
  T* grads_ = nullptr;
  QuantState quant_;
  int segments_ = 0;
  bool training_ = true;
  uint64_t dropout_seed_ = 0;

  // Linear uses: per layer q,k,v,o,gate,up,down; plus embedding and head.
  std::vector<std::array<Linear, 7>> lin_;
  Linear embed_lin_, head_lin_;

  // Activation arena (A) and statistics arena (T: rstd, lse, RoPE tables, row losses, the head's dW).
  A* act_arena_ = nullptr;
  T* stat_arena_ = nullptr;
  size_t act_count_ = 0, stat_count_ = 0;
  int capB_ = 0, capT_ = 0, B_ = 0, T_ = 0;
  std::vector<LayerActs> slots_;
  std::vector<A*> boundary_;  // residual stream at segment starts (+ final)
  T *cos_ = nullptr, *sin_ = nullptr;
  A *xf_ = nullptr, *xf_q_ = nullptr, *dxf_ = nullptr, *logit_chunk_ = nullptr;
  T *xf_rstd_ = nullptr, *row_loss_ = nullptr;
  T* head_dw_ = nullptr;  // dL/dW_head from the fused forward, scaled into grads by backward()
  A *tmp_d_ = nullptr, *dres_ = nullptr, *dA_ = nullptr, *dB_ = nullptr, *dC_ = nullptr;
  // dq_, dk_, dv_ are three buffers, or (fused Q/K/V) one [N, d + 2 kvd] matrix at dq_; dF1_..dF3_ are
  // three [N, ff] buffers, two of them ([dF2_ dF3_], or [dF1_ dF2_] with sub-norms) one [N, 2 ff] matrix
  // of the fused gate/up gradient.
  A *dq_ = nullptr, *dk_ = nullptr, *dv_ = nullptr, *dqr_ = nullptr, *dkr_ = nullptr;
  A *dF1_ = nullptr, *dF2_ = nullptr, *dF3_ = nullptr;
  int chunk_rows_ = 0;
  // The current batch in backend memory (capacity capB_*capT_), uploaded once per forward; scored_ is
  // its number of targets >= 0, counted on the host before the upload.
  kernels::DeviceBuffer<int32_t> tokens_, targets_;
  int64_t scored_ = 0;
  kernels::DeviceBuffer<kernels::QuantScale> scales_;  // one per Linear
  kernels::DeviceBuffer<int64_t> code_counts_;         // weight_stats' int64[3]
  bool count_next_ = false, counted_ = false;          // request_weight_stats; code_counts_ holds a forward's
  // A counting forward's counts, read by take_losses (already waiting for that forward) so that weight_stats
  // needs no second wait later, behind the optimizer's update.
  bool counts_read_ = false;
  int64_t counts_host_[3] = {0, 0, 0};
  bool fused_ = false;                                 // set_fused_projections
  std::vector<A*> qbuf_blocks_;                        // alloc_group_qbufs' blocks: every Linear's qbuf
  // Loss sums of the forwards not yet read (loss_slots_[0..pending_)), with their scored counts.
  kernels::DeviceBuffer<double> loss_slots_;
  std::vector<int64_t> pending_scored_;
  bool have_forward_ = false, head_grads_ready_ = false;
  Transformer::GradsReadyHook grads_ready_;  // Transformer::set_grads_ready_hook
  // grads_ready_(the gradients of layer l (-1: the embeddings; L: the final norm and an untied head)).
  void report_grads_ready(int l);
};

extern template class Network<float>;
extern template class Network<double>;
extern template class Network<float, kernels::bf16>;

}  // namespace onebit::model
