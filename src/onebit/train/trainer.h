#pragma once
// The training loop: data → forward/backward (with gradient accumulation) → clip → AdamW, the LR
// and quantization schedules, metrics, evals, checkpoints, exact resume and Ctrl-C handling.
#include <cstdint>
#include <set>
#include <string>

#include "onebit/data/batch_source.h"
#include "onebit/model/transformer.h"

namespace onebit::train {

struct TrainOptions {
  std::string data;                  // text file, .tokens file or dataset dir
  std::string model_config = "tiny";
  std::string tokenizer = "byte";
  std::string output_dir;
  int batch_size = 16;
  int seq_len = 256;
  int accumulation_steps = 1;
  int checkpoint_segments = 0;
  int64_t max_steps = 1000;
  int64_t save_every = 0;            // 0: only at the end (and on Ctrl-C)
  int64_t eval_every = 0;            // 0: only at the end
  int eval_batches = 16;
  int keep_checkpoints = 3;
  double lr = 2e-3;
  double min_lr = -1;                // < 0: lr / 10
  int64_t warmup_steps = -1;         // < 0: min(100, max_steps / 20)
  std::string schedule = "cosine";
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;
  int64_t quant_warmup_steps = -1;   // < 0: 10% of max_steps
  int64_t quant_anneal_steps = -1;   // < 0: 30% of max_steps
  double quant_k_start = 2.0, quant_k_end = 100.0;  // k -> 0 would shrink weights to 0
  double val_fraction = 0.1;
  uint64_t seed = 1234;
  std::string resume;                // checkpoint dir; empty: <output>/checkpoints/latest if present
  bool no_resume = false;            // ignore an existing latest and start fresh
  int threads = 0;
  // Flags the user typed (by long name, e.g. "lr"): on resume, these must agree with the checkpoint;
  // flags not typed take the checkpoint's values.
  std::set<std::string> explicit_flags;
};

// Runs training to completion (or until Ctrl-C); returns the process exit status.
int run_training(TrainOptions opt);

// One optimizer step's gradients: zero, then `accum` micro-batches of B x T, each backward scaled
// by 1/accum, so the result equals one batch of accum*B sequences. Returns the mean loss.
float accumulate_gradients(model::Transformer& model, data::BatchSource& source, int B, int T, int accum,
                           uint64_t dropout_seed);

}  // namespace onebit::train
