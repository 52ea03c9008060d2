#include "onebit/train/data_parallel.h"

#include <algorithm>
#include <string_view>
#include <thread>

#include "onebit/core/error.h"
#include "onebit/core/log.h"

namespace onebit::train {

namespace {

kernels::BackendMemory& backend_memory(kernels::Device device, const dist::LaunchEnv& env) {
  if (device == kernels::Device::Cpu) return kernels::cpu_ops();
  // One GPU per rank, chosen before the backend's stream and memory exist (they live on the device
  // current when it starts). A plain process keeps the default device (CUDA_VISIBLE_DEVICES).
  if (env.world_size > 1 || env.launcher != dist::Launcher::Single)
    kernels::select_cuda_device(dist::gpu_for_rank(env, kernels::cuda_device_count()));
  return kernels::cuda_ops();
}

dist::Wire grad_wire(const dist::LaunchEnv& env, dist::Device device) {
  if (env.grad_wire == "f32") return dist::Wire::F32;
  if (env.grad_wire == "bf16") return dist::Wire::BF16;
  return device == dist::Device::Cuda ? dist::Wire::BF16 : dist::Wire::F32;
}

}  // namespace

DataParallel::DataParallel(kernels::Device device)
    : device_(device == kernels::Device::Cuda ? dist::Device::Cuda : dist::Device::Cpu), env_(dist::detect_launch()) {
  kernels::BackendMemory& mem = backend_memory(device, env_);
  comm_ = dist::open_communicator(device_, env_, mem);
  wire_ = grad_wire(env_, device_);
  distributed_ = std::string_view(comm_->name()) != "single";
  // Rank 0 speaks for the job; the others would repeat each line. Warnings and errors still show.
  if (!is_root() && log_level() > LogLevel::Warn) set_log_level(LogLevel::Warn);
}

DataParallel::~DataParallel() = default;

int DataParallel::threads_for_rank(int requested) const {
  if (requested > 0 || env_.local_world_size <= 1) return requested;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / env_.local_world_size);
}

namespace {
std::string ranks(int n) { return cat(n, n == 1 ? " rank" : " ranks"); }
}  // namespace

void DataParallel::adapt_saved_batch(TrainerState& saved, const std::string& where) const {
  const int W = world_size();
  if (saved.world_size == W) return;
  const int64_t global = static_cast<int64_t>(saved.run.batch_size) * saved.world_size;
  if (global % W != 0)
    fail(where, ": the checkpoint's global batch of ", global, " sequences (", ranks(saved.world_size), " x --batch-size ",
         saved.run.batch_size, ") does not split over ", ranks(W), "; resume on a number of ranks that divides it");
  const int per_rank = static_cast<int>(global / W);
  if (is_root())
    log_info("resuming a checkpoint of ", ranks(saved.world_size), " on ", ranks(W), ": --batch-size ", per_rank,
             " per rank keeps the global batch of ", global, " sequences");
  saved.run.batch_size = per_rank;
}

std::unique_ptr<data::BatchSource> DataParallel::rank_rows(std::unique_ptr<data::BatchSource> src) const {
  if (world_size() == 1) return src;
  return std::make_unique<data::RankRowsSource>(std::move(src), rank(), world_size());
}

std::unique_ptr<AdamW> DataParallel::make_optimizer(size_t num_params, AdamWConfig cfg, std::vector<DecayRange> ranges,
                                                    kernels::ParamOps<float>& ops) {
  counts_ = dist::split_counts(num_params, world_size());
  return std::make_unique<AdamW>(num_params, cfg, std::move(ranges), ops, dist::part_offset(counts_, rank()),
                                 counts_[static_cast<size_t>(rank())]);
}

dist::GradientReducer& DataParallel::reducer(float* grads, size_t n) {
  if (!reducer_)
    reducer_ = std::make_unique<dist::GradientReducer>(*comm_, grads, n, kGradBucketValues, wire_);
  return *reducer_;
}

void DataParallel::grads_ready(float* grads, size_t n, size_t offset, size_t count) {
  if (!distributed_) return;
  reducer(grads, n).ready(offset, count);
  hooked_ = true;
}

model::Transformer::GradsReadyHook DataParallel::grads_ready_hook(float* grads, size_t n) {
  // MPI collectives block the CPU: there the whole arena goes after the backward (reduce_gradients).
  if (!distributed_ || device_ != dist::Device::Cuda) return {};
  return [this, grads, n](size_t offset, size_t count) { grads_ready(grads, n, offset, count); };
}

void DataParallel::reduce_gradients(float* grads, size_t n) {
  if (!distributed_) return;
  dist::GradientReducer& r = reducer(grads, n);
  if (!hooked_) r.ready(0, n);
  r.finish();
  started_in_backward_ = hooked_ ? r.reduced_early() : 0;
  hooked_ = false;
}

std::string DataParallel::describe_reduction() const {
  if (!reducer_) return {};
  const size_t n = reducer_->buckets();
  return cat("gradients: ", n, n == 1 ? " bucket" : " buckets", " of up to ", kGradBucketValues >> 20, " Mi values as ",
             wire_ == dist::Wire::BF16 ? "bf16" : "f32", " over ", comm_->name(), ", ", started_in_backward_,
             " started during the backward");
}

void DataParallel::gather_params(float* params, size_t n) {
  if (!distributed_) return;
  OB_CHECK(!counts_.empty(), "gather_params before make_optimizer");
  comm_->all_gather(params, counts_);
}

DataParallel::StepEnd DataParallel::end_step(float loss, bool stop_requested) {
  if (!distributed_) return {loss, stop_requested};
  double v[2] = {loss, stop_requested ? 1.0 : 0.0};
  comm_->all_reduce_sum_host(v, 2);
  return {static_cast<float>(v[0] / world_size()), v[1] > 0};
}

OptimizerMoments DataParallel::gather_moments(AdamW& opt) {
  OptimizerMoments out;
  out.t = opt.steps_taken();
  if (!distributed_) {
    opt.download_state(out.m, out.v);
    return out;
  }
  if (is_root()) {
    out.m.resize(opt.num_params());
    out.v.resize(opt.num_params());
  }
  comm_->gather_to_host(opt.exp_avg().data(), counts_, out.m.data(), 0);
  comm_->gather_to_host(opt.exp_avg_sq().data(), counts_, out.v.data(), 0);
  return out;
}

}  // namespace onebit::train
