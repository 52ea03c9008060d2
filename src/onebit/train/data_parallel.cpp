#include "onebit/train/data_parallel.h"

#include <algorithm>
#include <string_view>
#include <optional>
#include <string>
#include <vector>
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

// Every rank's string, on every rank, through the host sum all-reduce that every communicator has
// (each rank fills its own slots, the others are zero): a few hundred bytes per checkpoint, where a
// dedicated collective would buy nothing.
std::vector<std::string> all_gather_strings(dist::Communicator& comm, const std::string& mine) {
  const size_t W = static_cast<size_t>(comm.world_size()), me = static_cast<size_t>(comm.rank());
  std::vector<double> lengths(W, 0.0);
  lengths[me] = static_cast<double>(mine.size());
  comm.all_reduce_sum_host(lengths.data(), W);
  std::vector<size_t> offset(W + 1, 0);
  for (size_t r = 0; r < W; ++r) offset[r + 1] = offset[r] + static_cast<size_t>(lengths[r]);
  std::vector<double> bytes(offset[W], 0.0);
  for (size_t i = 0; i < mine.size(); ++i) bytes[offset[me] + i] = static_cast<unsigned char>(mine[i]);
  if (!bytes.empty()) comm.all_reduce_sum_host(bytes.data(), bytes.size());
  std::vector<std::string> out(W);
  for (size_t r = 0; r < W; ++r)
    for (size_t i = offset[r]; i < offset[r + 1]; ++i) out[r].push_back(static_cast<char>(static_cast<int>(bytes[i])));
  return out;
}

// A per-rank source under several ranks: each reads its own part, so one rank's part may end
// before the others'. The job ends when every part has ended; a rank done earlier trains on its
// source's padding (ignored targets: no loss, no gradient) until then.
class AgreedEndSource final : public data::BatchSource {
 public:
  AgreedEndSource(std::unique_ptr<data::BatchSource> inner, dist::Communicator& comm, int rank, int world)
      : inner_(std::move(inner)), comm_(comm), rank_(rank), world_(world) {}
  void next_batch(int B, int T, int32_t* inputs, int32_t* targets) override {
    inner_->next_batch(B, T, inputs, targets);
  }
  json state() const override { return inner_->state(); }
  void restore(const json& state) override { inner_->restore(state); }
  std::string describe() const override {
    return cat(inner_->describe(), " (rank ", rank_, " of ", world_, ": its own part of the data)");
  }
  bool at_end() override {
    double ended = inner_->at_end() ? 1.0 : 0.0;
    comm_.all_reduce_sum_host(&ended, 1);
    return ended >= world_;
  }
  json step_metrics() override { return inner_->step_metrics(); }
  std::string progress() const override { return inner_->progress(); }

 private:
  std::unique_ptr<data::BatchSource> inner_;
  dist::Communicator& comm_;
  int rank_, world_;
};

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

std::unique_ptr<data::BatchSource> DataParallel::rank_data(std::unique_ptr<data::BatchSource> src, bool per_rank) {
  if (!per_rank) return rank_rows(std::move(src));
  if (world_size() == 1) return src;
  return std::make_unique<AgreedEndSource>(std::move(src), *comm_, rank(), world_size());
}

json DataParallel::gather_data_state(const json& mine, bool per_rank) {
  if (!per_rank || world_size() == 1) return mine;
  const std::vector<std::string> all = all_gather_strings(*comm_, mine.dump());
  if (!is_root()) return nullptr;
  json ranks_state = json::array();
  for (const auto& s : all) ranks_state.push_back(json::parse(s));
  return json{{"kind", "per_rank"}, {"world_size", world_size()}, {"ranks", ranks_state}};
}

namespace {

// The ranks a saved data state needs: those that saved a per-rank state, else any.
std::optional<int> per_rank_world(const json& saved) {
  if (!saved.is_object() || !saved.contains("kind") || saved["kind"] != "per_rank") return std::nullopt;
  return json_get<int>(saved, "world_size", "data");
}

[[noreturn]] void refuse_world(int saved_world, int world) {
  fail("the data position was saved by ", ranks(saved_world), ", each reading its own part of the data (its "
       "shards, a share that depends on the number of ranks), so it resumes on ", ranks(saved_world), " only, not on ",
       ranks(world), " (or pass --no-resume to start over)");
}

}  // namespace

void DataParallel::check_saved_data_world(const json& saved, const std::string& where) const {
  const std::optional<int> w = per_rank_world(saved);
  if (!w || *w == world_size()) return;
  try {
    refuse_world(*w, world_size());
  } catch (const Error& e) {
    fail(where, ": key \"data\": ", e.what());
  }
}

json DataParallel::data_state_of_rank(const json& saved, bool per_rank) const {
  if (!per_rank) return saved;
  const int W = world_size();
  const std::optional<int> saved_world = per_rank_world(saved);
  if (saved_world.value_or(1) != W) refuse_world(saved_world.value_or(1), W);
  if (!saved_world) return saved;
  if (!saved.contains("ranks") || !saved["ranks"].is_array() || saved["ranks"].size() != static_cast<size_t>(W))
    fail("key \"ranks\" must be an array of ", W, " rank states");
  return saved["ranks"][static_cast<size_t>(rank())];
}

uint64_t DataParallel::max_over_ranks(uint64_t value) {
  if (world_size() == 1) return value;
  std::vector<double> all(static_cast<size_t>(world_size()), 0.0);
  all[static_cast<size_t>(rank())] = static_cast<double>(value);
  comm_->all_reduce_sum_host(all.data(), all.size());
  return static_cast<uint64_t>(*std::max_element(all.begin(), all.end()));
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
