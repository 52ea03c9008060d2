#pragma once
// `onebit stack-stream`'s training data: a data::BatchSource over a Hub dataset of parquet shards,
// so the trainer (and its exact resume) is the same as for local files.
//
//   ShardDownloader (background, within the disk budget) → ParquetDocuments (the `content` column,
//   one row group at a time) → data::ParallelTokenizer (EOT after every row, as the JSONL source
//   does) → rows of T+1 tokens packed back to back, consecutive rows overlapping by one token, so
//   every token after the first is a target exactly once per epoch.
//
// Shards come in epoch_order (shard_order.h). A shard is finished in the ShardCache (evictable)
// as soon as all its rows have been read: its tokens are then in memory, so the next shard's
// download never waits for the trainer to use them up. --steps-per-shard caps the tokens taken from
// one shard; its remaining rows are skipped (counted). A shard whose download fails for good is
// skipped with a warning and listed in the state.
//
// state() (saved in every checkpoint's trainer_state.json, so atomically with it) is the StreamState:
// the epoch, the position in the epoch's order of the shard holding the next untrained token, the row
// in it and how many of that row's tokens were trained, plus what must not change on resume (manifest,
// weights, tokenizer, revision) and the counters (rows trained, shards skipped). restore() deletes the
// files of shards that are done and resumes reading at that row, so after a kill every row is
// trained exactly once.
//
// One pass (loop_epochs false, --max-global-steps 0): the last batch is padded with ignored targets
// (-1) and at_end() turns true. Otherwise the stream starts the next epoch, in a new order.
//
// Data parallelism (world > 1): the source streams only the shards its rank owns (shard_owner.h),
// under <local_root>/rank-<r>-of-<world>, within budget_bytes / local_world (the ranks on one host
// split the budget; ShardCache's HostShare counts strays against every rank). Its state is this
// rank's position alone: the trainer gathers every rank's into the checkpoint (train/data_parallel.h).
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "onebit/data/batch_source.h"
#include "onebit/data/parallel_tokenizer.h"
#include "onebit/data/tokenizer.h"
#include "onebit/stream/language_sampler.h"
#include "onebit/stream/manifest.h"
#include "onebit/stream/shard_cache.h"
#include "onebit/stream/shard_downloader.h"

namespace onebit::stream {

class ParquetDocuments;

struct StreamConfig {
  Manifest manifest;
  std::vector<LanguageWeight> weights;
  fs::path local_root;
  uint64_t budget_bytes = 0;  // for the whole host (--disk-budget-gb)
  int rank = 0, world = 1;    // data-parallel rank, ranks in the job
  int local_world = 1;        // ranks on this host, which split budget_bytes
  DownloaderOptions download;
  std::string column = "content";
  uint64_t seed = 0;
  uint64_t shard_token_cap = 0;  // 0: whole shards
  bool loop_epochs = false;
  int threads = 0;  // tokenizer threads
  // ONEBIT_STREAM_ROW_LOG: every row, once all its tokens were trained, appends
  // "<seq> <epoch> <path> <row>" (seq counts trained rows, saved in the state: a replay after a
  // resume writes the same line again). With several ranks each writes <row_log>.rank-<r>-of-<world>.
  fs::path row_log;
};

class StreamSource final : public data::BatchSource {
 public:
  StreamSource(StreamConfig config, const data::Tokenizer& tok);
  ~StreamSource() override;

  void next_batch(int B, int T, int32_t* inputs, int32_t* targets) override;
  json state() const override;
  void restore(const json& state) override;
  std::string describe() const override;
  bool at_end() override;
  json step_metrics() override;
  std::string progress() const override;

  // One pass: an estimate of the tokens this source will give, for the schedules' horizon before
  // training starts. Reads ahead (these tokens are trained on later, not read twice) until
  // `sample_tokens` are buffered or the data ends, measures tokens per byte of parquet on what it
  // read, and applies it to the sizes of all the shards of the pass (each capped by
  // --steps-per-shard). Exact when the whole pass fits in the sample. Call before next_batch.
  uint64_t estimate_pass_tokens(uint64_t sample_tokens);

  // The directory of rank `rank` of `world` under the local root ("" for a world of one).
  static std::string rank_dir(int rank, int world);

 private:
  struct DocRec {
    uint64_t epoch;         // the rows of one epoch may still be in carry_ when the next begins
    size_t pos;             // position of its shard in that epoch's order
    size_t shard;           // its index in the manifest
    uint64_t row;           // row in the shard
    uint64_t tokens;        // EOT included
    uint64_t consumed;      // tokens already trained
    uint64_t shard_tokens;  // tokens taken from the shard before this row (the --steps-per-shard cap)
  };
  void start();
  void new_epoch(uint64_t epoch);
  bool open_shard();  // opens order_[pos_] for reading; false when it was skipped
  void close_shard(const char* why);
  bool pull_document();        // one row into carry_; false at the end of the epoch
  size_t ensure(size_t need);  // tokens available (< need only at the end of a one-pass stream)
  void consume(size_t n);
  void log_row(const DocRec& d);
  const Shard& shard_at(size_t pos) const { return cfg_.manifest.shards[order_[pos]]; }
  std::vector<size_t> order_of(uint64_t epoch) const;

  StreamConfig cfg_;
  std::vector<bool> owned_;  // the manifest shards this rank streams (all of them on one rank)
  fs::path root_;            // where this rank's shards go
  uint64_t budget_;          // this rank's share of the host's budget
  const data::Tokenizer& tok_;
  std::optional<int32_t> eot_;
  std::string manifest_hash_;
  ShardCache cache_;
  std::unique_ptr<ShardDownloader> downloader_;

  uint64_t epoch_ = 0;
  std::vector<size_t> order_;
  bool started_ = false;
  // The reader: shard order_[pos_], next row, tokens taken from it so far.
  size_t pos_ = 0;
  uint64_t row_ = 0, shard_tokens_ = 0;
  std::unique_ptr<data::ParallelTokenizer> pipe_;
  const ParquetDocuments* reader_ = nullptr;  // owned by pipe_ (its rows(), for the counts)
  std::vector<data::TokenizedDoc> batch_;
  size_t batch_idx_ = 0;
  bool epoch_had_rows_ = false;

  std::vector<int32_t> carry_;
  size_t head_ = 0;
  std::deque<DocRec> docs_;  // rows with tokens in carry_[head_..], oldest first

  uint64_t rows_trained_ = 0;     // over the whole run (the row log's seq)
  uint64_t rows_capped_ = 0;      // rows left untrained by --steps-per-shard
  json skipped_ = json::array();  // shards skipped this run: {"epoch","path","error"}
  uint64_t shards_done_ = 0;      // shards of this epoch fully read

  std::chrono::steady_clock::duration wait_{};  // blocked on data since the last step_metrics()
  std::chrono::steady_clock::duration wait_total_{};
  std::chrono::steady_clock::time_point started_at_{};
  uint64_t tokens_trained_ = 0;  // this process: tokens consumed (for the progress line)
  std::chrono::steady_clock::time_point disk_checked_{};
  uint64_t disk_bytes_ = 0, disk_peak_ = 0;
  int row_log_fd_ = -1;
};

}  // namespace onebit::stream
