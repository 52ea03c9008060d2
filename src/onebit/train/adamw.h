#pragma once
// AdamW (Loshchilov & Hutter) over one flat parameter arena, as torch.optim.AdamW computes it:
//   p -= lr * wd * p            (decoupled decay; skipped for ranges with decay = false)
//   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// Element-wise, so the result does not depend on the number of threads.
#include <cstdint>
#include <span>
#include <vector>

namespace onebit::train {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
};

// A contiguous range of the arena and whether weight decay applies to it (not to norms or biases).
struct DecayRange {
  size_t offset = 0;
  size_t numel = 0;
  bool decay = true;
};

class AdamW {
 public:
  AdamW(size_t num_params, AdamWConfig cfg, std::vector<DecayRange> ranges);

  void step(std::span<float> params, std::span<const float> grads, float lr);

  const AdamWConfig& config() const { return cfg_; }
  int64_t steps_taken() const { return t_; }
  void set_steps_taken(int64_t t) { t_ = t; }
  std::span<float> exp_avg() { return m_; }
  std::span<float> exp_avg_sq() { return v_; }
  const std::vector<DecayRange>& ranges() const { return ranges_; }

 private:
  AdamWConfig cfg_;
  std::vector<DecayRange> ranges_;
  std::vector<float> m_, v_;
  int64_t t_ = 0;
};

// sqrt(sum g^2) in double over fixed-size blocks summed in order: the same value for any thread count.
double global_grad_norm(std::span<const float> grads);
// Scales grads so that their global norm is at most max_norm (max_norm <= 0: no clipping).
// Returns the norm before clipping.
double clip_grad_norm(std::span<float> grads, double max_norm);

}  // namespace onebit::train
