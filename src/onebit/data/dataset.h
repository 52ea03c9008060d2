#pragma once
// Training data from a path, whatever its kind (see open_dataset).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "onebit/core/fs.h"
#include "onebit/data/batch_source.h"
#include "onebit/data/tokenizer.h"
#include "onebit/data/window_sources.h"

namespace onebit::data {

struct DataOptions {
  std::string path;
  double val_fraction = 0.1;
  uint64_t seed = 0;
  std::string text_field = "text";  // JSONL
  bool skip_bad_lines = false;      // JSONL / text (see documents.h for the policy)
  fs::path cache_dir;               // .txt → .tokens cache; empty: $XDG_CACHE_HOME/onebit/tokens or ~/.cache/onebit/tokens
  int threads = 0;                  // tokenizer threads; 0 = all cores
  // JSONL streaming only: hold out the first N documents for validation. -1 = auto:
  // val_fraction × (documents in the first 8 MiB of the file), at least 1.
  int64_t val_documents = -1;
  // For the one-argument open_dataset(opts); the two-argument form ignores it.
  const Tokenizer* tokenizer = nullptr;
};
using DatasetOptions = DataOptions;

struct Dataset {
  std::unique_ptr<BatchSource> train;
  std::unique_ptr<ValSource> val;  // null when val_fraction == 0
  uint64_t train_tokens = 0;       // 0 when unknown (streaming)
  uint64_t val_tokens = 0;
  bool streaming = false;
  std::string description;
  // Data parallelism: `train` already reads only this rank's own part of the data (stack-stream's
  // shard ownership), so the trainer neither takes rows of a global batch from it nor assumes its
  // state is the same on every rank (each rank's is saved: train/data_parallel.h).
  bool per_rank = false;
  // A one-pass source that knows (or estimated) its tokens: this rank's part. On a fresh start the
  // trainer sets the schedules' horizon from it instead of --max-steps.
  std::optional<uint64_t> pass_tokens;
};

// path kinds:
//   *.tokens             train = seeded random windows over the first (1 - val_fraction) of the file,
//                        val = the rest, in order. If "<stem>.val.tokens" exists next to it (written by
//                        `onebit tokenize --val-fraction`), train uses the whole file and val that one.
//                        The header's tokenizer hash must equal tok.hash().
//   *.txt, a directory   tokenized once (EOS after each file) into the cache
//                        <cache_dir>/<stem>-<hash>.tokens, then as *.tokens.
//   *.jsonl[.gz|.zst]    streamed (jsonl_stream.h): never fully loaded, tokenized in the background.
Dataset open_dataset(const DataOptions& opts, const Tokenizer& tok);
Dataset open_dataset(const DataOptions& opts);  // uses opts.tokenizer (must be set)

// The cached .tokens for a text file or directory (tokenizing it if the cache is missing or stale).
fs::path cached_tokens_for_text(const fs::path& path, const Tokenizer& tok, const fs::path& cache_dir, int threads);

// Checks that a .tokens file was made with `tok`, else the error tells how to fix it.
void check_token_file_matches(const TokenFile& file, const Tokenizer& tok);

fs::path default_cache_dir();

}  // namespace onebit::data
