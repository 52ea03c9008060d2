#include "onebit/train/adamw.h"

#include <cmath>

#include "onebit/core/error.h"

namespace onebit::train {

AdamW::AdamW(size_t num_params, AdamWConfig cfg, std::vector<DecayRange> ranges, kernels::ParamOps<float>& ops)
    : ops_(ops),
      cfg_(cfg),
      ranges_(std::move(ranges)),
      m_(ops, num_params),
      v_(ops, num_params),
      norm_sq_(ops, 1),
      clip_(ops, 1) {
  for (const auto& r : ranges_)
    OB_CHECK(r.offset + r.numel <= num_params, "AdamW: parameter range [", r.offset, ", ", r.offset + r.numel,
             ") is outside the arena of ", num_params);
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
  ops_.adamw_step(params, grads, m_.get(), v_.get(), ranges_.data(), ranges_.size(), h, clip);
}

void AdamW::step(std::span<float> params, std::span<const float> grads, float lr) {
  OB_CHECK(params.size() == m_.size() && grads.size() == m_.size(), "AdamW: arena size changed");
  step(params.data(), grads.data(), lr);
}

void AdamW::clip_and_step(float* params, const float* grads, float lr, double max_norm) {
  ops_.grad_norm_sq(norm_sq_.get(), grads, m_.size());
  ops_.clip_factor(clip_.get(), norm_sq_.get(), max_norm);
  step(params, grads, lr, clip_.get());
}

double AdamW::read_grad_norm() const {
  double norm_sq = 0;
  norm_sq_.download(&norm_sq, 1);
  return std::sqrt(norm_sq);
}

void AdamW::download_state(std::vector<float>& m, std::vector<float>& v) const {
  m.resize(m_.size());
  v.resize(v_.size());
  m_.download(m.data(), m.size());
  v_.download(v.data(), v.size());
}

void AdamW::upload_state(std::span<const float> m, std::span<const float> v) {
  OB_CHECK(m.size() == m_.size() && v.size() == v_.size(), "AdamW: optimizer state of ", m.size(), " values for ",
           m_.size(), " parameters");
  m_.upload(m.data(), m.size());
  v_.upload(v.data(), v.size());
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
