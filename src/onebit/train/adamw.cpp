#include "onebit/train/adamw.h"

#include <algorithm>
#include <cmath>

#include "onebit/core/error.h"

namespace onebit::train {

AdamW::AdamW(size_t num_params, AdamWConfig cfg, std::vector<DecayRange> ranges, kernels::ParamOps<float>& ops)
    : AdamW(num_params, cfg, std::move(ranges), ops, 0, num_params) {}

AdamW::AdamW(size_t num_params, AdamWConfig cfg, std::vector<DecayRange> ranges, kernels::ParamOps<float>& ops,
             size_t shard_offset, size_t shard_count)
    : ops_(ops),
      cfg_(cfg),
      ranges_(std::move(ranges)),
      num_params_(num_params),
      shard_offset_(shard_offset),
      m_(ops, shard_count),
      v_(ops, shard_count),
      norm_sq_(ops, 1),
      clip_(ops, 1) {
  OB_CHECK(shard_offset + shard_count <= num_params, "AdamW: shard [", shard_offset, ", ", shard_offset + shard_count,
           ") is outside the arena of ", num_params);
  const size_t shard_end = shard_offset + shard_count;
  for (const auto& r : ranges_) {
    OB_CHECK(r.offset + r.numel <= num_params, "AdamW: parameter range [", r.offset, ", ", r.offset + r.numel,
             ") is outside the arena of ", num_params);
    const size_t lo = std::max(r.offset, shard_offset), hi = std::min(r.offset + r.numel, shard_end);
    if (lo < hi) shard_ranges_.push_back({lo - shard_offset, hi - lo, r.decay});
  }
}

void AdamW::step(float* params, const float* grads, float lr, const float* clip) {
  ++t_;
  kernels::AdamWHyper h;
  h.lr = lr;
  h.beta1 = cfg_.beta1;
  h.beta2 = cfg_.beta2;
  h.eps = cfg_.eps;
  h.weight_decay = cfg_.weight_decay;
  h.bias1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(cfg_.beta1), static_cast<double>(t_)));
  h.bias2 = 1.0f - static_cast<float>(std::pow(static_cast<double>(cfg_.beta2), static_cast<double>(t_)));
  if (shard_ranges_.empty()) return;
  ops_.adamw_step(params + shard_offset_, grads + shard_offset_, m_.get(), v_.get(), shard_ranges_.data(),
                  shard_ranges_.size(), h, clip);
}

void AdamW::step(std::span<float> params, std::span<const float> grads, float lr) {
  OB_CHECK(params.size() == num_params_ && grads.size() == num_params_, "AdamW: arena size changed");
  step(params.data(), grads.data(), lr);
}

void AdamW::clip_and_step(float* params, const float* grads, float lr, double max_norm) {
  ops_.grad_norm_sq(norm_sq_.get(), grads, num_params_);
  ops_.clip_factor(clip_.get(), norm_sq_.get(), max_norm);
  // Read before the update is queued, not after: on a GPU this download waits for the norm alone, and the
  // trainer's logging then runs while the update does (it used to wait for the whole update: ~0.4 ms of an
  // idle GPU in every 125m step on the H200).
  norm_sq_.download(&last_norm_sq_, 1);
  step(params, grads, lr, clip_.get());
}

double AdamW::read_grad_norm() const { return std::sqrt(last_norm_sq_); }

void AdamW::download_state(std::vector<float>& m, std::vector<float>& v) const {
  m.resize(m_.size());
  v.resize(v_.size());
  m_.download(m.data(), m.size());
  v_.download(v.data(), v.size());
}

void AdamW::upload_state(std::span<const float> m, std::span<const float> v) {
  OB_CHECK(m.size() == num_params_ && v.size() == num_params_, "AdamW: optimizer state of ", m.size(), " values for ",
           num_params_, " parameters");
  m_.upload(m.data() + shard_offset_, m_.size());
  v_.upload(v.data() + shard_offset_, v_.size());
}

double global_grad_norm(std::span<const float> grads) {
  double norm_sq = 0;
  kernels::cpu_ops().grad_norm_sq(&norm_sq, grads.data(), grads.size());
  return std::sqrt(norm_sq);
}

double clip_grad_norm(std::span<float> grads, double max_norm) {
  auto& ops = kernels::cpu_ops();
  double norm_sq = 0;
  ops.grad_norm_sq(&norm_sq, grads.data(), grads.size());
  float factor = 1.0f;
  ops.clip_factor(&factor, &norm_sq, max_norm);
  if (factor != 1.0f)
    for (float& g : grads) g *= factor;
  return std::sqrt(norm_sq);
}

}  // namespace onebit::train
