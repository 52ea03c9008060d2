// onebit stack-stream: train on a Hugging Face dataset of parquet shards (The Stack) streamed
// through a bounded local disk; and `onebit stack-stream manifest`, the shard list on its own.
// The training flags are those of `onebit train` (train/train_options.h), registered from the same
// table with the same meaning; --data is replaced by the stream's flags and --max-steps by
// --max-global-steps (0 = one pass over the data). There is no held-out split (so no evaluation
// flags): every row of the stream is trained on.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/train_cli_options.h"
#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/core/log.h"
#include "onebit/hub/client.h"
#include "onebit/hub/tree.h"
#include "onebit/stream/language_sampler.h"
#include "onebit/stream/manifest.h"
#include "onebit/stream/stream_source.h"
#include "onebit/train/run_setup.h"
#include "onebit/train/trainer.h"

namespace onebit::cli {
namespace {

struct StreamArgs {
  std::string dataset_id, revision = "main", token, local_root, languages, manifest, column = "content";
  double disk_budget_gb = 0;
  int64_t steps_per_shard = 0, max_global_steps = 0;
  int download_parallel = 2;
  std::string output;  // manifest subcommand
};

// For --max-global-steps 0 the schedules need a horizon before training starts: the stream reads
// ahead this many tokens (kept for training), measures tokens per parquet byte on them and applies
// it to the whole pass (StreamSource::estimate_pass_tokens; exact when the pass is smaller). 4 Mi
// tokens hold 16 MiB and span thousands of rows of The Stack.
constexpr uint64_t kHorizonSampleTokens = uint64_t{1} << 22;

hub::HubOptions hub_options(const StreamArgs& a) {
  return hub::hub_options_from_env(a.token, hub::process_env(), fs::current_path());
}

// Lists the dataset at the commit --revision points at now.
std::pair<stream::Manifest, std::string> list_manifest(const StreamArgs& a) {
  hub::check_dataset_id(a.dataset_id);
  hub::HubClient client(hub_options(a));
  const std::string commit = hub::resolve_dataset_commit(client, a.dataset_id, a.revision);
  log_info("dataset ", a.dataset_id, " revision \"", printable(a.revision), "\" is commit ", commit);
  stream::Manifest m = stream::manifest_from_listing(hub::list_dataset_files(client, a.dataset_id, commit));
  if (m.skipped > 0)
    log_warn("manifest: ", m.skipped, " .parquet files are not data/<lang>/train-N-of-M.parquet; left out");
  if (m.shards.empty())
    fail("--dataset-id ", a.dataset_id, ": no data/<language>/train-N-of-M.parquet shards at revision \"",
         printable(a.revision), "\"");
  return {std::move(m), commit};
}

void print_sizes(const stream::Manifest& m) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> per;  // language -> shards, bytes
  uint64_t total = 0;
  for (const auto& s : m.shards) {
    ++per[s.language].first;
    per[s.language].second += s.size;
    total += s.size;
  }
  std::printf("%-24s %8s %16s\n", "language", "shards", "bytes");
  for (const auto& [lang, v] : per)
    std::printf("%-24s %8llu %16llu\n", printable(lang).c_str(), static_cast<unsigned long long>(v.first),
                static_cast<unsigned long long>(v.second));
  std::printf("%-24s %8zu %16llu\n", "total", m.shards.size(), static_cast<unsigned long long>(total));
}

void run_manifest(const StreamArgs& a) {
  if (a.dataset_id.empty()) fail("--dataset-id is required");
  if (a.output.empty()) fail("--output is required");
  const auto [m, commit] = list_manifest(a);
  stream::write_manifest(a.output, m);
  print_sizes(m);
  std::printf("manifest of %zu shards (commit %s) written to %s\n", m.shards.size(), commit.c_str(), a.output.c_str());
}

// The run's manifest and the commit it was listed at: <output-dir>/manifest.jsonl and stream.json,
// written on a fresh start and reused on resume, so a run of weeks streams one fixed list.
struct RunData {
  stream::Manifest manifest;
  std::string commit;
  bool fresh = true;  // to be written once the trainer has checked the rest of the command
};

RunData run_manifest_for(const StreamArgs& a, const fs::path& out, bool resuming) {
  const fs::path mpath = out / "manifest.jsonl", spath = out / "stream.json";
  if (resuming && fs::exists(mpath) && fs::exists(spath)) {
    const json s = read_json_file(spath);
    const std::string where = spath.string();
    const std::string saved_id = json_get<std::string>(s, "dataset_id", where);
    if (saved_id != a.dataset_id)
      fail("--dataset-id ", a.dataset_id, " differs from \"", printable(saved_id), "\" that ", where,
           " was started with; use another --output-dir or --no-resume");
    const std::string commit = json_get<std::string>(s, "commit", where);
    log_info("stack-stream: resuming with ", mpath.string(), " (commit ", printable(commit), ")");
    return {stream::read_manifest(mpath), commit, false};
  }
  RunData d;
  if (!a.manifest.empty()) {
    d.manifest = stream::read_manifest(a.manifest);
    hub::HubClient client(hub_options(a));
    d.commit = hub::resolve_dataset_commit(client, a.dataset_id, a.revision);
  } else {
    std::tie(d.manifest, d.commit) = list_manifest(a);
  }
  return d;
}

void write_run_data(const StreamArgs& a, const fs::path& out, const RunData& d) {
  fs::create_directories(out);
  stream::write_manifest(out / "manifest.jsonl", d.manifest);
  write_json_atomic(out / "stream.json",
                    json{{"dataset_id", a.dataset_id}, {"revision", a.revision}, {"commit", d.commit}});
}

void run_stack_stream(StreamArgs a, train::TrainOptions o, bool max_steps_typed) {
  if (a.dataset_id.empty()) fail("--dataset-id is required");
  if (a.local_root.empty()) fail("--local-root is required");
  if (o.output_dir.empty()) fail("--output-dir is required");
  if (!(a.disk_budget_gb > 0) || !std::isfinite(a.disk_budget_gb) || a.disk_budget_gb > 1e9)
    fail("--disk-budget-gb must be a positive number of GB (got ", a.disk_budget_gb, ")");
  if (a.steps_per_shard < 0) fail("--steps-per-shard must be >= 0 (0 = whole shards)");
  if (a.max_global_steps < 0 || a.max_global_steps > train::kMaxSteps)
    fail("--max-global-steps must be in [0, ", train::kMaxSteps, "] (0 = one pass over the data)");
  if (a.download_parallel < 1 || a.download_parallel > 64) fail("--download-parallel must be in [1, 64]");
  hub::check_dataset_id(a.dataset_id);
  const fs::path out(o.output_dir);
  train::check_output_dir(out);
  train::check_option_ranges(o);
  const bool resuming = train::find_resume_dir(o, out).has_value();
  const RunData run = run_manifest_for(a, out, resuming);

  std::vector<std::string> langs;
  for (const auto& s : run.manifest.shards)
    if (langs.empty() || langs.back() != s.language) langs.push_back(s.language);
  std::sort(langs.begin(), langs.end());
  langs.erase(std::unique(langs.begin(), langs.end()), langs.end());
  const auto weights = a.languages.empty() ? stream::weights_by_bytes(run.manifest)
                                           : stream::parse_language_weights(a.languages, langs, "--languages");

  const bool one_pass = a.max_global_steps == 0;
  if (one_pass) {
    // A placeholder until the stream has measured the pass (the trainer then sets the horizon); a
    // resumed run keeps the horizon it was saved with.
    o.max_steps = 1;
  } else {
    o.max_steps = a.max_global_steps;
    if (max_steps_typed) o.explicit_flags.insert("max_steps");
  }
  o.data = cat("hf://datasets/", a.dataset_id, "@", run.commit);

  stream::StreamConfig sc;
  sc.manifest = run.manifest;
  sc.weights = weights;
  sc.local_root = a.local_root;
  sc.budget_bytes = static_cast<uint64_t>(std::llround(a.disk_budget_gb * 1e9));
  sc.download = stream::DownloaderOptions{hub_options(a), a.dataset_id, run.commit, a.download_parallel};
  sc.column = a.column;
  sc.loop_epochs = !one_pass;
  if (const char* log = std::getenv("ONEBIT_STREAM_ROW_LOG"); log && *log) sc.row_log = log;
  const int64_t steps_per_shard = a.steps_per_shard;

  const train::DatasetFactory open_stream = [sc, steps_per_shard, a, out, run](
                                                const train::TrainOptions& opt, const data::Tokenizer& tok, int threads,
                                                bool resuming, const train::DataRanks& ranks) {
    // The model config and tokenizer have been checked by now: a command that fails on them has
    // written nothing. Rank 0 writes for the job (the output dir is shared, as for checkpoints).
    if (run.fresh && ranks.rank == 0) write_run_data(a, out, run);
    stream::StreamConfig c = sc;
    c.seed = opt.seed;
    c.threads = threads;
    c.rank = ranks.rank;
    c.world = ranks.world;
    c.local_world = ranks.local_world;
    c.shard_token_cap = static_cast<uint64_t>(steps_per_shard) * static_cast<uint64_t>(opt.batch_size) *
                        static_cast<uint64_t>(opt.seq_len) * static_cast<uint64_t>(opt.accumulation_steps);
    data::Dataset ds;
    ds.streaming = true;
    ds.per_rank = true;  // each rank streams the shards it owns
    auto src = std::make_unique<stream::StreamSource>(std::move(c), tok);
    if (!sc.loop_epochs && !resuming) ds.pass_tokens = src->estimate_pass_tokens(kHorizonSampleTokens);
    ds.description = src->describe();
    ds.train = std::move(src);
    return ds;
  };
  const int rc = train::run_training(o, open_stream);
  if (rc != 0) throw CLI::RuntimeError(rc);
}

}  // namespace

void add_stack_stream_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "stack-stream",
      "Train on a Hugging Face dataset of parquet shards (data/<language>/train-N-of-M.parquet, e.g.\n"
      "bigcode/the-stack) streamed through --local-root: shards download ahead in the background, are\n"
      "decoded (the --column text) and tokenized on the fly, and deleted once read, so the bytes under\n"
      "--local-root never exceed --disk-budget-gb. Languages are interleaved by --languages weights (default:\n"
      "by bytes). Every checkpoint records the stream's position (trainer_state.json \"data\"); rerunning the\n"
      "same command resumes at the same token, without downloading finished shards again. A new epoch reuses\n"
      "the shards still on disk (all of them when --disk-budget-gb holds them all).\n"
      "<output-dir>/manifest.jsonl and stream.json pin the shard list and commit of the run; metrics.jsonl\n"
      "adds data_wait_ms and disk_bytes per step. Ctrl-C saves a checkpoint and exits. Every row is trained on\n"
      "(no held-out split: evaluate a checkpoint with `onebit eval`).\n"
      "Data parallel: under `mpirun -np N` each rank owns a share of every language's shards (fixed by the\n"
      "manifest, --languages and N), downloads and deletes only those, under <local-root>/rank-R-of-N, and the\n"
      "ranks on one host split --disk-budget-gb. Checkpoints hold every rank's position; such a run resumes on\n"
      "the same number of ranks only (the shares depend on it); other numbers are refused.\n"
      "Token: --token, HF_TOKEN, HF_ACCESS_TOKEN, ./.env, or the huggingface_hub token file; HF_ENDPOINT\n"
      "overrides the Hub's address.");
  auto a = std::make_shared<StreamArgs>();
  auto o = std::make_shared<train::TrainOptions>();
  sub->add_option("--dataset-id", a->dataset_id, "dataset repo, namespace/name (e.g. bigcode/the-stack); required");
  sub->add_option("--revision", a->revision, "branch, tag or commit (resolved to a commit once, at the start)")
      ->capture_default_str();
  sub->add_option("--token", a->token, "access token (never printed or logged)");
  sub->add_option("--local-root", a->local_root, "directory the shards are downloaded to; required");
  sub->add_option("--disk-budget-gb", a->disk_budget_gb,
                  "most bytes (1 GB = 1e9) under --local-root at any time, partial downloads and other files "
                  "included, for the whole host: ranks on one host split it; required");
  sub->add_option("--languages", a->languages,
                  "language weights, e.g. python:0.4,c:0.2,markdown:0.1 (languages left out are not streamed; "
                  "default: every language in proportion to its bytes)");
  sub->add_option("--steps-per-shard", a->steps_per_shard,
                  "take at most N optimizer steps' tokens from each shard and skip the rest of it (0 = whole shards)")
      ->capture_default_str();
  sub->add_option("--max-global-steps", a->max_global_steps,
                  "optimizer steps to train for, across resumes; the stream starts a new epoch when the shards run "
                  "out. 0 = one pass: training ends with the data, and the LR and quantization schedules span the "
                  "pass, its tokens measured on the first 4 Mi tokens read (tokens per parquet byte, logged) and "
                  "counted exactly when the pass is smaller")
      ->capture_default_str();
  sub->add_option("--manifest", a->manifest,
                  "shard list to use instead of listing the dataset (a file `stack-stream manifest` wrote)");
  sub->add_option("--column", a->column, "parquet column holding the text")->capture_default_str();
  sub->add_option("--download-parallel", a->download_parallel, "shards downloading at once")->capture_default_str();

  // Every `onebit train` flag but --data (the stream is the data), --max-steps (--max-global-steps)
  // and those of the held-out split, which a stream does not have.
  static const std::set<std::string> not_here = {"data",       "max_steps",    "val_fraction",
                                                 "eval_every", "eval_batches", "final_eval_batches"};
  auto flags = std::make_shared<TrainCliOptions>(sub, o, not_here, /*mark_required=*/false);

  auto* man =
      sub->add_subcommand("manifest", "list the dataset's shards, write them as JSONL and print sizes per language");
  man->add_option("--dataset-id", a->dataset_id, "dataset repo, namespace/name")->required();
  man->add_option("--revision", a->revision, "branch, tag or commit")->capture_default_str();
  man->add_option("--token", a->token, "access token (never printed or logged)");
  man->add_option("--output", a->output, "manifest file to write (JSONL)")->required();
  man->callback([a] { run_manifest(*a); });

  sub->callback([sub, man, a, o, flags] {
    if (man->parsed()) return;
    flags->record_explicit_flags();
    run_stack_stream(*a, *o, sub->get_option("--max-global-steps")->count() > 0);
  });
}

}  // namespace onebit::cli
