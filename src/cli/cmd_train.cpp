// onebit train: flags (declared in train/train_options.cpp) → TrainOptions → train::run_training.
#include <memory>
#include <set>
#include <string>

#include "cli/commands.h"
#include "cli/train_cli_options.h"
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
      "Ctrl-C saves a checkpoint and exits; a second Ctrl-C exits at once.\n"
      "Data-parallel: `mpirun -np N onebit train ...` runs N ranks, each on --batch-size rows of every\n"
      "global batch of N x --batch-size; rank 0 writes the files (README \"Data-parallel training\").");
  auto o = std::make_shared<train::TrainOptions>();
  // Every flag comes from the one table of training options (train/train_options.h); the ranges
  // are checked there too, for flags and for values restored from a checkpoint alike.
  auto flags = std::make_shared<TrainCliOptions>(sub, o, std::set<std::string>{}, /*mark_required=*/true);

  sub->callback([o, flags]() {
    flags->record_explicit_flags();
    int rc = train::run_training(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace onebit::cli
