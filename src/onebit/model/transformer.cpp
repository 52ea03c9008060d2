// Transformer: the public f32 model, a Network<float> on a backend (the fast CPU one by default).
#include "onebit/model/transformer.h"

#include "onebit/core/error.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/network.h"

namespace onebit::model {

struct Transformer::Impl {
  Impl(const ModelConfig& cfg, kernels::Ops<float>& ops) : net(cfg, ops) {}
  Network<float> net;
};

Transformer::Transformer(const ModelConfig& cfg, kernels::Ops<float>& ops) : impl_(std::make_unique<Impl>(cfg, ops)) {}
Transformer::~Transformer() = default;

const ModelConfig& Transformer::config() const { return impl_->net.config(); }
const std::vector<ParamInfo>& Transformer::params_info() const { return impl_->net.layout().info; }

const ParamInfo& Transformer::param(const std::string& name) const {
  for (const auto& p : impl_->net.layout().info)
    if (p.name == name) return p;
  fail("model has no parameter named \"", name, "\"");
}

std::span<float> Transformer::params() { return {impl_->net.params(), impl_->net.num_params()}; }
std::span<float> Transformer::grads() { return {impl_->net.grads(), impl_->net.num_params()}; }
size_t Transformer::num_params() const { return impl_->net.num_params(); }
kernels::Ops<float>& Transformer::ops() const { return impl_->net.ops(); }

std::vector<float> Transformer::download_params() const {
  std::vector<float> host(impl_->net.num_params());
  impl_->net.ops().download(host.data(), impl_->net.params(), host.size());
  return host;
}

void Transformer::upload_params(std::span<const float> host) {
  OB_CHECK(host.size() == impl_->net.num_params(), "upload_params: ", host.size(), " values for ",
           impl_->net.num_params(), " parameters");
  impl_->net.ops().upload(impl_->net.params(), host.data(), host.size());
}

void Transformer::init_weights(uint64_t seed) { impl_->net.init_weights(seed); }
void Transformer::set_quant_state(QuantState s) { impl_->net.set_quant_state(s); }
QuantState Transformer::quant_state() const { return impl_->net.quant_state(); }
void Transformer::set_checkpoint_segments(int n) { impl_->net.set_checkpoint_segments(n); }
void Transformer::set_training(bool training) { impl_->net.set_training(training); }
void Transformer::set_dropout_seed(uint64_t seed) { impl_->net.set_dropout_seed(seed); }

float Transformer::forward(const int32_t* tokens, const int32_t* targets, int B, int T) {
  return (float)impl_->net.forward(tokens, targets, B, T);
}
void Transformer::forward_async(const int32_t* tokens, const int32_t* targets, int B, int T) {
  impl_->net.forward_async(tokens, targets, B, T);
}
std::vector<float> Transformer::take_losses() {
  const std::vector<double> means = impl_->net.take_losses();
  return std::vector<float>(means.begin(), means.end());  // each rounded to f32, as forward() returns it
}
void Transformer::backward(float loss_scale) { impl_->net.backward(loss_scale); }
void Transformer::zero_grad() { impl_->net.zero_grad(); }

void Transformer::logits(const int32_t* tokens, int B, int T, float* out, bool last_only) {
  impl_->net.logits(tokens, B, T, out, last_only);
}

size_t Transformer::peak_activation_bytes() const { return impl_->net.peak_activation_bytes(); }
WeightStats Transformer::weight_stats() const { return impl_->net.weight_stats(); }

}  // namespace onebit::model
