#include "onebit/train/run_setup.h"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <system_error>

#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/train/checkpoint.h"

namespace onebit::train {

namespace {

std::string one_decimal(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

}  // namespace

// --output-dir must be a directory or not exist yet; checked before anything is read or written so
// that a file there gives a clear error instead of a filesystem exception later.
void check_output_dir(const fs::path& out) {
  std::error_code ec;
  const fs::file_status st = fs::status(out, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    fail("--output-dir ", printable(out.string()), ": ", ec.message());
  if (fs::exists(st) && !fs::is_directory(st))
    fail("--output-dir ", printable(out.string()), " exists and is not a directory");
}

void create_output_dir(const fs::path& out) {
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) fail("--output-dir ", printable(out.string()), ": cannot create it (", ec.message(), ")");
}

// The checkpoint to resume: --resume's dir (or a run dir's latest), else <out>'s latest unless
// --no-resume; nullopt for a fresh start.
std::optional<fs::path> find_resume_dir(const TrainOptions& opt, const fs::path& out) {
  if (opt.resume.empty()) return opt.no_resume ? std::nullopt : find_latest_checkpoint(out);
  fs::path dir = opt.resume;
  if (fs::is_regular_file(dir / "latest") || fs::is_directory(dir / "checkpoints")) {
    auto latest = find_latest_checkpoint(fs::is_directory(dir / "checkpoints") ? dir : dir.parent_path());
    if (!latest) fail("--resume ", printable(opt.resume), ": no checkpoint found");
    dir = *latest;
  }
  if (!fs::is_directory(dir)) fail("--resume ", printable(opt.resume), ": checkpoint dir not found");
  return dir;
}

// Temp files and dirs of a run that was killed mid-write are removed; a fresh start (nothing to
// resume, or --no-resume) also drops the old checkpoints, whose `latest` would otherwise win later.
void remove_leftovers(const fs::path& out, bool fresh_start) {
  // AtomicFileWriter's "<file>.tmp-<pid>" and save_checkpoint's ".tmp-step-NNNNNN-<pid>".
  auto is_temp = [](const std::string& name) {
    const size_t at = name.find(".tmp-");
    return at != std::string::npos && !name.empty() && std::isdigit(static_cast<unsigned char>(name.back()));
  };
  for (const fs::path& dir : {out, out / "checkpoints"}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (is_temp(e.path().filename().string())) fs::remove_all(e.path());
  }
  if (fresh_start && fs::exists(out / "checkpoints")) {
    log_info("starting from scratch: removing the old checkpoints in ", (out / "checkpoints").string());
    fs::remove_all(out / "checkpoints");
  }
  // --save-best's directory and its swap leftovers: a fresh run's best starts over.
  // A crash between its two renames left best.old and no best: that is the last complete best.
  if (!fs::exists(out / "best") && fs::exists(out / "best.old")) fs::rename(out / "best.old", out / "best");
  if (fresh_start) fs::remove_all(out / "best");
  fs::remove_all(out / "best.tmp");
  fs::remove_all(out / "best.old");
}

void check_vocab_fits(const model::ModelConfig& cfg, const data::Tokenizer& tok, const std::string& tokenizer_spec,
                      const std::string& config_file) {
  if (tok.vocab_size() > cfg.vocab_size)
    fail("--tokenizer ", tokenizer_spec, " has ", tok.vocab_size(), " ids but vocab_size is ", cfg.vocab_size, " in ",
         config_file, "; raise vocab_size there to at least ", tok.vocab_size(), " or use a smaller tokenizer");
}

// The same test load_model_config uses to look a name up among the presets.
bool is_preset_name(const std::string& spec) {
  return !fs::exists(spec) && spec.find('/') == std::string::npos && spec.find(".json") == std::string::npos;
}

// A preset's vocab_size is only a default (the byte tokenizer's 257): it grows to fit the tokenizer,
// rounded up to a multiple of 64 so the embedding/head matmuls stay aligned. A config file the user
// wrote is taken literally.
void fit_vocab_to_tokenizer(model::ModelConfig& cfg, const data::Tokenizer& tok, const std::string& tokenizer_spec,
                            const std::string& config_spec) {
  if (tok.vocab_size() <= cfg.vocab_size) return;
  if (!is_preset_name(config_spec)) {
    const fs::path p = fs::is_directory(config_spec) ? fs::path(config_spec) / "config.json" : fs::path(config_spec);
    check_vocab_fits(cfg, tok, tokenizer_spec, p.string());
    return;
  }
  const int padded = (tok.vocab_size() + 63) / 64 * 64;
  log_info("model config ", config_spec, ": vocab_size ", cfg.vocab_size, " -> ", padded, " to fit --tokenizer ",
           tokenizer_spec, " (", tok.vocab_size(), " ids, rounded up to a multiple of 64)");
  cfg.vocab_size = padded;
  cfg.validate(cat("model config ", config_spec, " with vocab_size ", padded));
}

// Activations grow with tokens per micro-batch. Refuse sizes whose logits plus one layer's
// activations (attention probabilities, ~8 hidden-size and 3 intermediate-size vectors per token)
// exceed this machine's memory, before anything is allocated. That is a lower bound whatever the
// --gradient-checkpointing-segments (all layers' activations are kept without it).
kernels::Device resolve_run_device(const TrainOptions& opt) {
  return kernels::choose_device(opt.explicit_flags.count("device") ? opt.device : std::string());
}

void check_fits_in_memory(const model::ModelConfig& cfg, int B, int T) {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return;
  const double ram = static_cast<double>(pages) * static_cast<double>(page);
  const double per_token = 4.0 * (static_cast<double>(cfg.vocab_size) + static_cast<double>(cfg.num_attention_heads) * T +
                                  8.0 * cfg.hidden_size + 3.0 * cfg.intermediate_size);
  const double need = static_cast<double>(B) * T * per_token;
  if (need > ram) {
    const double gib = 1024.0 * 1024.0 * 1024.0;
    fail("--batch-size ", B, " x --seq-len ", T, " needs at least ", one_decimal(need / gib),
         " GiB of activations for this model (logits and one layer's activations), more than this machine's ",
         one_decimal(ram / gib), " GiB of memory; lower them and raise --accumulation-steps instead");
  }
}

}  // namespace onebit::train
