// onebit train: flags → TrainOptions → train::run_training.
#include <memory>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "onebit/train/trainer.h"

namespace onebit::cli {

void add_train_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "train",
      "Train a ternary/binary language model on a text file, a .tokens file or a dataset dir.\n"
      "Checkpoints go to <output-dir>/checkpoints/step-NNNNNN/ (model dir files + optimizer.safetensors +\n"
      "trainer_state.json; <output-dir>/checkpoints/latest names the newest). Rerunning the same command\n"
      "resumes from latest automatically. At the end the final model dir (config.json, model.safetensors,\n"
      "tokenizer.json) is written directly into <output-dir>; per-step metrics are in <output-dir>/metrics.jsonl.\n"
      "Ctrl-C saves a checkpoint and exits; a second Ctrl-C exits at once.");
  auto o = std::make_shared<train::TrainOptions>();
  auto named = std::make_shared<std::vector<std::pair<CLI::Option*, std::string>>>();
  auto flag = [&](CLI::Option* opt, const char* key) {
    named->emplace_back(opt, key);
    return opt;
  };

  flag(sub->add_option("--data,--data-dir", o->data,
                       "Training data: a UTF-8 text file or a dir of them (tokenized once into a cached .tokens file), "
                       "a .tokens file, or a .jsonl[.gz|.zst] file (streamed). The last --val-fraction is held out "
                       "for evaluation. (--data-dir: alias of the Rust CLI)"),
       "data");
  flag(sub->add_option("--model-config,--config", o->model_config,
                       "Model config: a preset (tiny, 25m, 125m, ...) or a config.json / dir holding one "
                       "(--config: alias of the Rust CLI). A preset's vocab_size grows to fit --tokenizer (its id "
                       "count rounded up to a multiple of 64, logged); a config.json's vocab_size must already fit. "
                       "On resume the checkpoint's config (and vocab) is kept.")
           ->capture_default_str(),
       "model_config");
  flag(sub->add_option("--tokenizer", o->tokenizer,
                       "\"byte\" (built-in byte-level tokenizer) or a tokenizer.json / dir holding one")
           ->capture_default_str(),
       "tokenizer");
  sub->add_option("--output-dir,-o", o->output_dir, "Run dir: metrics.jsonl, checkpoints/, and the final model")
      ->required();
  flag(sub->add_option("--batch-size,-b", o->batch_size, "Sequences per micro-batch")->capture_default_str(),
       "batch_size");
  flag(sub->add_option("--seq-len", o->seq_len, "Tokens per sequence (<= max_position_embeddings)")
           ->capture_default_str(),
       "seq_len");
  flag(sub->add_option("--accumulation-steps", o->accumulation_steps,
                       "Micro-batches accumulated per optimizer step (effective batch = batch-size x this)")
           ->capture_default_str(),
       "accumulation_steps");
  sub->add_option("--gradient-checkpointing-segments", o->checkpoint_segments,
                  "Keep activations only at N segment boundaries and recompute each segment in backward "
                  "(0 = keep all; saves memory, costs about one extra forward)")
      ->capture_default_str();
  flag(sub->add_option("--max-steps", o->max_steps, "Optimizer steps to train for (total, across resumes)")
           ->capture_default_str(),
       "max_steps");
  sub->add_option("--save-every", o->save_every,
                  "Save a checkpoint every N steps (0 = only at the end and on Ctrl-C)")
      ->capture_default_str();
  sub->add_option("--keep-checkpoints", o->keep_checkpoints, "Keep only the newest K checkpoints (0 = keep all)")
      ->capture_default_str();
  sub->add_option("--eval-every", o->eval_every,
                  "Evaluate held-out loss and bits/byte every N steps (0 = only at the end)")
      ->capture_default_str();
  sub->add_option("--eval-batches", o->eval_batches, "Batches of batch-size x seq-len per evaluation")
      ->capture_default_str();
  flag(sub->add_option("--lr", o->lr, "Peak learning rate")->capture_default_str(), "lr");
  flag(sub->add_option("--min-lr", o->min_lr, "Learning-rate floor reached at --max-steps (default: lr / 10)"),
       "min_lr");
  flag(sub->add_option("--warmup-steps", o->warmup_steps,
                       "Linear learning-rate warmup steps (default: min(100, max-steps / 20))"),
       "warmup_steps");
  flag(sub->add_option("--schedule", o->schedule, "Learning-rate decay after warmup: cosine, linear or constant")
           ->capture_default_str(),
       "schedule");
  flag(sub->add_option("--weight-decay", o->weight_decay,
                       "AdamW decoupled weight decay (not applied to norms and biases)")
           ->capture_default_str(),
       "weight_decay");
  flag(sub->add_option("--beta1", o->beta1, "AdamW beta1")->capture_default_str(), "beta1");
  flag(sub->add_option("--beta2", o->beta2, "AdamW beta2")->capture_default_str(), "beta2");
  flag(sub->add_option("--grad-clip", o->grad_clip, "Clip the global gradient norm to this (0 = off)")
           ->capture_default_str(),
       "grad_clip");
  flag(sub->add_option("--quant-warmup-steps", o->quant_warmup_steps,
                       "Phase 1: full-precision steps before quantization starts (default: 10% of max-steps)"),
       "quant_warmup_steps");
  flag(sub->add_option("--quant-anneal-steps", o->quant_anneal_steps,
                       "Phase 2: steps of tanh soft quantization with sharpness k rising from --quant-k-start to "
                       "--quant-k-end; then phase 3, hard ternary/binary QAT with int8 activations "
                       "(default: 30% of max-steps)"),
       "quant_anneal_steps");
  flag(sub->add_option("--quant-k-start", o->quant_k_start, "Soft-phase sharpness k at its start")
           ->capture_default_str(),
       "quant_k_start");
  flag(sub->add_option("--quant-k-end", o->quant_k_end, "Soft-phase sharpness k at its end (rises geometrically)")
           ->capture_default_str(),
       "quant_k_end");
  flag(sub->add_option("--val-fraction", o->val_fraction, "Fraction of the data held out for evaluation")
           ->capture_default_str(),
       "val_fraction");
  flag(sub->add_option("--seed", o->seed, "Seed for weights, data order and dropout")->capture_default_str(),
       "seed");
  sub->add_option("--resume", o->resume,
                  "Resume from this checkpoint dir (or a run dir: its latest). Without it, <output-dir>/"
                  "checkpoints/latest is resumed if present. Flags left out take the checkpoint's values.");
  sub->add_flag("--no-resume", o->no_resume,
                "Start from scratch even if <output-dir> has checkpoints (they and metrics.jsonl are replaced)");
  sub->add_option("--threads", o->threads,
                  "CPU threads of the kernels' OpenMP pool (0 = all cores; resume with the same count for "
                  "bitwise-identical results)")
      ->capture_default_str();

  sub->callback([o, named]() {
    for (const auto& [opt, key] : *named)
      if (opt->count() > 0) o->explicit_flags.insert(key);
    int rc = train::run_training(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace onebit::cli
