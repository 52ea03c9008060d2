#pragma once
// The decoder-only transformer with hand-written backward (llm.c style). All parameters live in one
// contiguous f32 arena (and gradients in a second one of the same layout), so the optimizer,
// checkpointing and (later) gradient all-reduce work on flat arrays. Both arenas are memory of the
// backend (kernels::Ops) the model was built on: file I/O goes through download_params/upload_params.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "onebit/kernels/backend.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/config.h"

namespace onebit::model {

struct ParamInfo {
  std::string name;              // Hugging Face style, e.g. "model.layers.3.self_attn.q_proj.weight"
  std::vector<int64_t> shape;    // row-major; linear weights are [out_features, in_features]
  size_t offset = 0;             // into params()/grads(), in floats
  size_t numel = 0;
  bool decay = true;             // false for norms, biases and (by convention) nothing else
  Precision precision = Precision::F32;  // quantized linears carry their precision
};

// The three-phase quantization schedule's state for one step.
enum class QuantPhase { FullPrecision, Soft, Hard };
struct QuantState {
  QuantPhase phase = QuantPhase::Hard;
  float k = 0.0f;  // tanh sharpness in the Soft phase
};

struct WeightStats {  // fraction of quantized weights whose ternary code is -1, 0, +1 (Hard/Soft)
  double neg = 0, zero = 0, pos = 0;
};

class Transformer {
 public:
  // Runs on `ops` (the fast CPU backend unless given), which must outlive the model. The second form
  // keeps activations in bf16 (the CUDA backend, kernels/backend.h); parameters are f32 on both.
  explicit Transformer(const ModelConfig& cfg, kernels::Ops<float>& ops = kernels::cpu_ops());
  Transformer(const ModelConfig& cfg, kernels::Ops<float, kernels::bf16>& ops);
  ~Transformer();
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  const ModelConfig& config() const;
  const std::vector<ParamInfo>& params_info() const;
  const ParamInfo& param(const std::string& name) const;  // error naming `name` if absent
  kernels::ParamOps<float>& ops() const;  // the parameter side of the backend (optimizer, I/O)
  // The arenas in the backend's memory: pass them to the backend's kernels (on the CPU backends they
  // are also host-addressable, which tests use; production code reads and writes them only through
  // the two copies below).
  std::span<float> params();
  std::span<float> grads();
  size_t num_params() const;
  std::vector<float> download_params() const;           // the whole arena, to the host
  void upload_params(std::span<const float> host);     // num_params() values, from the host

  void init_weights(uint64_t seed);  // deterministic for a seed
  void set_quant_state(QuantState s);
  QuantState quant_state() const;
  // 0 = keep all activations; N > 0 = keep only activations at N segment boundaries and recompute
  // each segment during backward. Gradients are bitwise identical either way.
  void set_checkpoint_segments(int n);
  void set_training(bool training);        // dropout on/off
  void set_dropout_seed(uint64_t seed);    // per step, for exact resume

  // Forward over a batch of B sequences of T tokens (host arrays, uploaded once); targets < 0 are
  // ignored. Returns the mean cross-entropy (nats/token) over non-ignored targets, read back from the
  // backend (one download). Keeps what backward() needs.
  float forward(const int32_t* tokens, const int32_t* targets, int B, int T);
  // The same forward without reading the loss back: it waits in backend memory until take_losses(),
  // which returns the mean loss of every forward_async since the last call, in order (one download).
  void forward_async(const int32_t* tokens, const int32_t* targets, int B, int T);
  std::vector<float> take_losses();
  // Accumulates d(loss_scale * loss)/d(params) into grads(); call after forward() on the same batch.
  void backward(float loss_scale = 1.0f);
  // Called by backward() as ranges of grads() become final, in the order the backward produces them:
  // the final norm and an untied head, then each layer from the last down, then the embeddings
  // ([offset, offset + count) in floats; together they cover the arena once). On a GPU backend the
  // call comes when the range's kernels are queued, not done: stream-ordered work sees them. The
  // data-parallel trainer starts each gradient bucket's all-reduce from it. Empty: no calls.
  using GradsReadyHook = std::function<void(size_t offset, size_t count)>;
  void set_grads_ready_hook(GradsReadyHook hook);
  void zero_grad();

  // Inference: logits [B, T, vocab] (or only the last position of each sequence when last_only).
  void logits(const int32_t* tokens, int B, int T, float* out, bool last_only);

  // Bytes of activation memory used by the last forward/backward (for the checkpointing benchmark).
  size_t peak_activation_bytes() const;
  WeightStats weight_stats() const;  // counted on the backend; one download
  // The next forward counts the codes of the weights it quantizes, in its own pass; the next
  // weight_stats then reports those (the weights that forward used) without a pass of its own. A
  // forward in full precision counts nothing (weight_stats then makes its own pass).
  void request_weight_stats();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The model on a device's backend (kernels/backend.h): cpu_ops() or the CUDA backend.
std::unique_ptr<Transformer> make_transformer(const ModelConfig& cfg, kernels::Device device);

}  // namespace onebit::model
