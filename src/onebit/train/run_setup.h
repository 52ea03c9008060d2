#pragma once
// The checks and preparations of a training run that come before its step loop: the output dir, the
// checkpoint to resume, the model's vocab against the tokenizer, and whether a micro-batch can fit
// in memory. All of them fail with one line naming the flag or file at fault.
#include <optional>
#include <string>

#include "onebit/core/fs.h"
#include "onebit/data/tokenizer.h"
#include "onebit/kernels/backend.h"
#include "onebit/model/config.h"
#include "onebit/train/train_options.h"

namespace onebit::train {

// --output-dir must be a directory or not exist yet (checked before anything is read or written).
void check_output_dir(const fs::path& out);
void create_output_dir(const fs::path& out);

// Removes the temp files of a run killed mid-write; a fresh start also drops the old checkpoints.
void remove_leftovers(const fs::path& out, bool fresh_start);

// The checkpoint to resume: --resume's dir (or a run dir's latest), else <out>'s latest unless
// --no-resume; nullopt for a fresh start.
std::optional<fs::path> find_resume_dir(const TrainOptions& opt, const fs::path& out);

// The same test load_model_config uses to look a name up among the presets.
bool is_preset_name(const std::string& spec);

// The tokenizer's ids must fit the config's vocab_size (config_file names where to raise it).
void check_vocab_fits(const model::ModelConfig& cfg, const data::Tokenizer& tok, const std::string& tokenizer_spec,
                      const std::string& config_file);

// A preset's vocab_size grows to fit the tokenizer (rounded up to a multiple of 64); a config file
// is taken literally and must already fit.
void fit_vocab_to_tokenizer(model::ModelConfig& cfg, const data::Tokenizer& tok, const std::string& tokenizer_spec,
                            const std::string& config_spec);

// --device where typed, else $ONEBIT_DEVICE, else auto (kernels::choose_device).
kernels::Device resolve_run_device(const TrainOptions& opt);

// Refuses a batch-size x seq-len whose activations cannot fit in this machine's memory, before
// anything is allocated.
void check_fits_in_memory(const model::ModelConfig& cfg, int B, int T);

}  // namespace onebit::train
