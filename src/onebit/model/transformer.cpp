// Transformer: the public f32 model, a Network<float> on a CPU backend or a Network<float, bf16> on a
// backend with bf16 activations (CUDA). Every call dispatches to whichever of the two was built.
#include "onebit/model/transformer.h"

#include "onebit/core/error.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/network.h"

namespace onebit::model {

struct Transformer::Impl {
  std::unique_ptr<Network<float>> f32;
  std::unique_ptr<Network<float, kernels::bf16>> bf16;
  template <typename F>
  decltype(auto) visit(F&& f) const {
    return f32 ? f(*f32) : f(*bf16);
  }
};

Transformer::Transformer(const ModelConfig& cfg, kernels::Ops<float>& ops) : impl_(std::make_unique<Impl>()) {
  impl_->f32 = std::make_unique<Network<float>>(cfg, ops);
}
Transformer::Transformer(const ModelConfig& cfg, kernels::Ops<float, kernels::bf16>& ops)
    : impl_(std::make_unique<Impl>()) {
  impl_->bf16 = std::make_unique<Network<float, kernels::bf16>>(cfg, ops);
}
Transformer::~Transformer() = default;

const ModelConfig& Transformer::config() const {
  return impl_->visit([](auto& n) -> const ModelConfig& { return n.config(); });
}
const std::vector<ParamInfo>& Transformer::params_info() const {
  return impl_->visit([](auto& n) -> const std::vector<ParamInfo>& { return n.layout().info; });
}

const ParamInfo& Transformer::param(const std::string& name) const {
  for (const auto& p : params_info())
    if (p.name == name) return p;
  fail("model has no parameter named \"", name, "\"");
}

std::span<float> Transformer::params() {
  return impl_->visit([](auto& n) { return std::span<float>(n.params(), n.num_params()); });
}
std::span<float> Transformer::grads() {
  return impl_->visit([](auto& n) { return std::span<float>(n.grads(), n.num_params()); });
}
size_t Transformer::num_params() const {
  return impl_->visit([](auto& n) { return n.num_params(); });
}
kernels::ParamOps<float>& Transformer::ops() const {
  return impl_->visit([](auto& n) -> kernels::ParamOps<float>& { return n.ops(); });
}

std::vector<float> Transformer::download_params() const {
  std::vector<float> host(num_params());
  impl_->visit([&](auto& n) { n.ops().download(host.data(), n.params(), host.size()); });
  return host;
}

void Transformer::upload_params(std::span<const float> host) {
  OB_CHECK(host.size() == num_params(), "upload_params: ", host.size(), " values for ", num_params(),
           " parameters");
  impl_->visit([&](auto& n) { n.ops().upload(n.params(), host.data(), host.size()); });
}

void Transformer::init_weights(uint64_t seed) {
  impl_->visit([&](auto& n) { n.init_weights(seed); });
}
void Transformer::set_quant_state(QuantState s) {
  impl_->visit([&](auto& n) { n.set_quant_state(s); });
}
QuantState Transformer::quant_state() const {
  return impl_->visit([](auto& n) { return n.quant_state(); });
}
void Transformer::set_checkpoint_segments(int segments) {
  impl_->visit([&](auto& n) { n.set_checkpoint_segments(segments); });
}
void Transformer::set_training(bool training) {
  impl_->visit([&](auto& n) { n.set_training(training); });
}
void Transformer::set_dropout_seed(uint64_t seed) {
  impl_->visit([&](auto& n) { n.set_dropout_seed(seed); });
}

float Transformer::forward(const int32_t* tokens, const int32_t* targets, int B, int T) {
  return impl_->visit([&](auto& n) { return (float)n.forward(tokens, targets, B, T); });
}
void Transformer::forward_async(const int32_t* tokens, const int32_t* targets, int B, int T) {
  impl_->visit([&](auto& n) { n.forward_async(tokens, targets, B, T); });
}
std::vector<float> Transformer::take_losses() {
  const std::vector<double> means = impl_->visit([](auto& n) { return n.take_losses(); });
  return std::vector<float>(means.begin(), means.end());  // each rounded to f32, as forward() returns it
}
void Transformer::backward(float loss_scale) {
  impl_->visit([&](auto& n) { n.backward(loss_scale); });
}
void Transformer::set_grads_ready_hook(GradsReadyHook hook) {
  impl_->visit([&](auto& n) { n.set_grads_ready_hook(hook); });
}
void Transformer::zero_grad() {
  impl_->visit([](auto& n) { n.zero_grad(); });
}

void Transformer::logits(const int32_t* tokens, int B, int T, float* out, bool last_only) {
  impl_->visit([&](auto& n) { n.logits(tokens, B, T, out, last_only); });
}

size_t Transformer::peak_activation_bytes() const {
  return impl_->visit([](auto& n) { return n.peak_activation_bytes(); });
}
WeightStats Transformer::weight_stats() const {
  return impl_->visit([](auto& n) { return n.weight_stats(); });
}

void Transformer::request_weight_stats() {
  impl_->visit([](auto& n) { n.request_weight_stats(); });
}

std::unique_ptr<Transformer> make_transformer(const ModelConfig& cfg, kernels::Device device) {
  if (device == kernels::Device::Cuda) return std::make_unique<Transformer>(cfg, kernels::cuda_ops());
  return std::make_unique<Transformer>(cfg, kernels::cpu_ops());
}

}  // namespace onebit::model
