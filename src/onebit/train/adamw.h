#pragma once
// AdamW (Loshchilov & Hutter) over one flat parameter arena, as torch.optim.AdamW computes it:
//   p -= lr * wd * p            (decoupled decay; skipped for ranges with decay = false)
//   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// with global-norm gradient clipping before it. The arithmetic is the backend's (Ops::grad_norm_sq,
// clip_factor, adamw_step); this class holds the moments and the step's scalars in the backend's
// memory and keeps the step count, so a whole optimizer step runs there and the host reads only the
// norm it logs. Element-wise, so the result does not depend on the number of threads.
//
// ZeRO-1: an AdamW may own only a shard, a contiguous range [offset, offset + count) of the arena
// (data-parallel ranks each hold one, train/data_parallel.h): its moments cover the shard only and
// step() updates only the shard's parameters, from the full (all-reduced) gradients; the clipping
// norm is still taken over the whole arena.
#include <cstdint>
#include <span>
#include <vector>

#include "onebit/kernels/kernels.h"

namespace onebit::train {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
};

// A contiguous range of the arena and whether weight decay applies to it (not to norms or biases).
using DecayRange = kernels::AdamWRange;

class AdamW {
 public:
  // The moments live in `ops`' memory (the fast CPU backend unless given), which must outlive this.
  AdamW(size_t num_params, AdamWConfig cfg, std::vector<DecayRange> ranges,
        kernels::ParamOps<float>& ops = kernels::cpu_ops());
  // The same for the shard [shard_offset, shard_offset + shard_count) of the arena.
  AdamW(size_t num_params, AdamWConfig cfg, std::vector<DecayRange> ranges, kernels::ParamOps<float>& ops,
        size_t shard_offset, size_t shard_count);
  // One step on backend memory (params and grads of num_params values), gradients read as
  // grads * *clip where clip (one float in the backend's memory, nullable) is a clip factor.
  void step(float* params, const float* grads, float lr, const float* clip = nullptr);
  void step(std::span<float> params, std::span<const float> grads, float lr);  // sizes checked
  // Global-norm clipping to max_norm (<= 0: none) and the step, all on the backend: norm -> clip
  // factor -> AdamW; the gradients are not modified. read_grad_norm() then returns the norm before
  // clipping (downloaded by clip_and_step before it queues the update).
  void clip_and_step(float* params, const float* grads, float lr, double max_norm);
  double read_grad_norm() const;

  const AdamWConfig& config() const { return cfg_; }
  int64_t steps_taken() const { return t_; }
  void set_steps_taken(int64_t t) { t_ = t; }
  // The moments of the shard in the backend's memory (host-addressable on the CPU backends only).
  std::span<float> exp_avg() { return {m_.get(), m_.size()}; }
  std::span<float> exp_avg_sq() { return {v_.get(), v_.size()}; }
  // The moments to and from the host, for the optimizer state files: download_state gives the
  // shard's (shard_count() values each); upload_state takes the whole arena's (num_params() values,
  // as in the files) and keeps the shard's part.
  void download_state(std::vector<float>& m, std::vector<float>& v) const;
  void upload_state(std::span<const float> m, std::span<const float> v);
  const std::vector<DecayRange>& ranges() const { return ranges_; }
  size_t num_params() const { return num_params_; }
  size_t shard_offset() const { return shard_offset_; }
  size_t shard_count() const { return m_.size(); }

 private:
  kernels::ParamOps<float>& ops_;
  AdamWConfig cfg_;
  std::vector<DecayRange> ranges_;
  size_t num_params_ = 0, shard_offset_ = 0;
  std::vector<DecayRange> shard_ranges_;  // ranges_ cut to the shard, relative to its start
  kernels::DeviceBuffer<float> m_, v_;
  kernels::DeviceBuffer<double> norm_sq_;
  kernels::DeviceBuffer<float> clip_;
  double last_norm_sq_ = 0;  // the last clip_and_step's squared norm, on the host
  int64_t t_ = 0;
};

// Host arrays on the fast CPU backend's kernels (whose memory is host memory), for tests and tools:
// sqrt(sum g^2) in double over fixed-size blocks summed in order: the same value for any thread count.
double global_grad_norm(std::span<const float> grads);
// Scales grads so that their global norm is at most max_norm (max_norm <= 0: no clipping).
// Returns the norm before clipping.
double clip_grad_norm(std::span<float> grads, double max_norm);

}  // namespace onebit::train
