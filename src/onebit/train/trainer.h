#pragma once
// The training loop: data → forward/backward (with gradient accumulation) → clip → AdamW, the LR
// and quantization schedules, metrics, evals, checkpoints, exact resume and Ctrl-C handling.
#include <cstdint>
#include <functional>
#include <optional>

#include "onebit/data/batch_source.h"
#include "onebit/data/dataset.h"
#include "onebit/model/transformer.h"
#include "onebit/train/train_options.h"

namespace onebit::train {

// This process's place in a data-parallel job, for a source that splits the data among the ranks
// itself (Dataset::per_rank).
struct DataRanks {
  int rank = 0;
  int world = 1;
  int local_world = 1;  // ranks on this host
};

// The training data of a run that does not come from --data (stack-stream's Hub stream): called
// once the options, tokenizer and checkpoint to resume are known; `resuming` says whether the
// source's state will be restored from that checkpoint.
using DatasetFactory = std::function<data::Dataset(const TrainOptions& opt, const data::Tokenizer& tok, int threads,
                                                   bool resuming, const DataRanks& ranks)>;

// Runs training to completion (or until Ctrl-C, or until a finite source ends); returns the process
// exit status. Without open_data the data comes from opt.data (data::open_dataset).
int run_training(TrainOptions opt, const DatasetFactory& open_data = {});

// One optimizer step's gradients: zero, then `accum` micro-batches of B x T, each backward scaled
// by 1/accum. Returns the mean of the micro-batches' losses.
//
// This equals one batch of accum*B sequences exactly when (1) dropout is off (each micro-batch
// draws its own masks, seeded from `dropout_seed` and its index, unlike one big batch) and (2) every
// micro-batch has the same number of scored (non-ignored, target >= 0) tokens: each micro-batch's
// loss is a mean over its own scored tokens, so with counts n_a the result is the mean of the
// per-micro-batch gradients, sum_a g_a / accum, where the big batch gives sum_a n_a g_a / sum_a n_a.
// With both conditions it holds up to f32 rounding: the forward pass is bitwise that of the big
// batch on onebit's batch-invariant AVX-512 GEMM (on OpenBLAS only up to rounding), and the weight
// gradients are summed in another order (docs/design-notes.md "CPU GEMM").
float accumulate_gradients(model::Transformer& model, data::BatchSource& source, int B, int T, int accum,
                           uint64_t dropout_seed);

// The same, polling `stop` before each micro-batch: when it returns true the step is abandoned
// (gradients partial, `source` advanced) and nullopt is returned, so one Ctrl-C stops a step of
// many micro-batches promptly. On world_size data-parallel ranks each backward is scaled by a further
// 1/world_size, so that summing the ranks' gradients averages them (train/data_parallel.h), and
// last_grads_ready (when set) is the model's grads-ready hook during the last micro-batch's backward,
// the one after which the step's gradients are final.
std::optional<float> accumulate_gradients(model::Transformer& model, data::BatchSource& source, int B, int T,
                                          int accum, uint64_t dropout_seed, const std::function<bool()>& stop,
                                          int world_size = 1,
                                          const model::Transformer::GradsReadyHook& last_grads_ready = {});

}  // namespace onebit::train
