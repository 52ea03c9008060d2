#pragma once
// Data-parallel training (issue 18): what the trainer does differently on world_size ranks, in one
// place, so the step loop keeps a few calls (trainer.cpp):
//   data        each rank reads its own rows of every global batch of world_size x --batch-size rows
//               (data::RankRowsSource), so the union is the batch one process with the whole batch
//               reads, and the data state in a checkpoint is the same whatever the ranks
//   gradients   each rank scales its backward by 1 / world_size; the gradient arena is summed in
//               buckets (dist::GradientReducer), i.e. averaged: on GPUs each bucket's all-reduce
//               starts from the backward of the last micro-batch as soon as its layers are done
//               (the model's grads-ready hook) and overlaps the layers below; on CPUs after it
//   optimizer   ZeRO-1: AdamW's m and v only for this rank's contiguous shard of the arena; every
//               rank updates its shard's parameters and the shards are all-gathered
//   checkpoints the shards are gathered to rank 0, which alone writes checkpoints, metrics, logs and
//               the model, as one process would (the files do not depend on the number of ranks)
//   resume      a checkpoint from N ranks resumes on M: --batch-size becomes the global batch / M, the
//               data position is the saved one
//   GPUs        one process per GPU: LOCAL_RANK picks it (dist::gpu_for_rank) before the CUDA backend
//               starts; more ranks on a host than GPUs is an error
//   per-rank    a source that splits the data itself (Dataset::per_rank: stack-stream, where each rank
//   data        owns shards) is used as is; rank 0 gathers every rank's state into the checkpoint
//               ({"kind": "per_rank", "world_size", "ranks": [...]}), each rank restores its own, and
//               such a checkpoint resumes only on as many ranks (the shares depend on the number); a
//               one-pass source ends when every rank's part has ended (ranks done earlier pad)
#include <memory>
#include <string>
#include <vector>

#include "onebit/data/batch_source.h"
#include "onebit/dist/communicator.h"
#include "onebit/dist/grad_reducer.h"
#include "onebit/kernels/backend.h"
#include "onebit/model/transformer.h"
#include "onebit/train/adamw.h"
#include "onebit/train/checkpoint.h"

namespace onebit::train {

// Values per gradient bucket: 16 MiB of f32 (large enough that per-collective latency is small
// next to bandwidth, small enough that the first buckets can leave early in the backward pass).
inline constexpr size_t kGradBucketValues = size_t{4} << 20;

class DataParallel {
 public:
  // Detects how the process was launched (dist::detect_launch), on CUDA selects this rank's GPU
  // (before anything else starts the CUDA backend), and opens the communicator for the backend the
  // model runs on; a plain `onebit train` is a world of one.
  explicit DataParallel(kernels::Device device);
  ~DataParallel();

  int rank() const { return comm_->rank(); }
  int world_size() const { return comm_->world_size(); }
  bool is_root() const { return comm_->rank() == 0; }
  dist::Communicator& comm() { return *comm_; }
  // Collectives run (several ranks, or a world of one forced onto a backend by ONEBIT_DIST_BACKEND);
  // false for a plain single process, whose steps skip them.
  bool distributed() const { return distributed_; }
  const dist::LaunchEnv& launch() const { return env_; }

  // --threads for this rank: `requested` when given (> 0), else the host's cores shared among the
  // ranks on this host (all of them for a single process), so that N ranks on one host do not each
  // start a thread per core.
  int threads_for_rank(int requested) const;

  // A checkpoint saved on saved.world_size ranks: its per-rank batch_size is rewritten to this
  // world's share of the same global batch (error naming `where` when it does not divide).
  void adapt_saved_batch(TrainerState& saved, const std::string& where) const;
  // This rank's rows of every batch `src` gives (the source itself on a world of one).
  std::unique_ptr<data::BatchSource> rank_rows(std::unique_ptr<data::BatchSource> src) const;
  // rank_rows, or for a per-rank source the source itself, its at_end() agreed by all ranks.
  std::unique_ptr<data::BatchSource> rank_data(std::unique_ptr<data::BatchSource> src, bool per_rank);
  // The data state a checkpoint saves, from this rank's `mine`: for a per-rank source on several
  // ranks every rank's, gathered to rank 0 (every rank must call it; the others get null).
  json gather_data_state(const json& mine, bool per_rank);
  // This rank's part of a saved data state; a per-rank state of another number of ranks is an error.
  json data_state_of_rank(const json& saved, bool per_rank) const;
  // That error, before anything else is checked against the checkpoint (its batch split): a
  // per-rank state saved by another number of ranks (the file is `where`).
  void check_saved_data_world(const json& saved, const std::string& where) const;
  // The largest of the ranks' values (every rank must call it): a per-rank one-pass horizon.
  uint64_t max_over_ranks(uint64_t value);

  // The AdamW of this rank: the whole arena on one rank, its ZeRO-1 shard on several.
  std::unique_ptr<AdamW> make_optimizer(size_t num_params, AdamWConfig cfg, std::vector<DecayRange> ranges,
                                        kernels::ParamOps<float>& ops);
  // The grad-ready hook for the GPU path: gradients [offset, offset + count) of the arena are final
  // for this step (the backward pass of the last micro-batch calls it per layer); each bucket it
  // completes starts its all-reduce at once, overlapping the rest of the backward.
  void grads_ready(float* grads, size_t n, size_t offset, size_t count);
  // The hook to install on the model for the last micro-batch's backward (grads_ready on its arena),
  // or an empty one where nothing overlaps (a plain process, or the CPU path).
  model::Transformer::GradsReadyHook grads_ready_hook(float* grads, size_t n);
  // After the last micro-batch of a step: every rank's gradients summed into every rank's arena. What
  // no hook reported is reduced now (on the CPU path, the whole arena: MPI collectives block, so
  // there is nothing to overlap with). Buckets travel as bf16 on CUDA (NCCL), f32 on the CPU.
  void reduce_gradients(float* grads, size_t n);
  // One line on how the last step's gradients travelled: buckets, wire, and how many of them started
  // during the backward (the overlap); empty before the first reduce_gradients or on a plain process.
  std::string describe_reduction() const;
  // After each rank's AdamW updated its shard: every rank gets every shard's parameters.
  void gather_params(float* params, size_t n);
  // The step's loss averaged over the ranks, and whether any rank was asked to stop (Ctrl-C), so all
  // ranks stop after the same step.
  struct StepEnd {
    float loss = 0;
    bool stop = false;
  };
  StepEnd end_step(float loss, bool stop_requested);
  // The whole arena's moments, on rank 0 (empty elsewhere): every rank must call it.
  OptimizerMoments gather_moments(AdamW& opt);
  // Waits for every rank (before the output dir is used, at the end).
  void barrier() { comm_->barrier(); }

 private:
  dist::GradientReducer& reducer(float* grads, size_t n);

  dist::Device device_;
  dist::LaunchEnv env_;
  dist::Wire wire_ = dist::Wire::F32;
  bool distributed_ = false;
  std::unique_ptr<dist::Communicator> comm_;
  bool hooked_ = false;  // grads_ready was called this step
  size_t started_in_backward_ = 0;  // buckets the last step's hook started
  std::vector<size_t> counts_;  // the arena's shards, set by make_optimizer
  std::unique_ptr<dist::GradientReducer> reducer_;
};

}  // namespace onebit::train
