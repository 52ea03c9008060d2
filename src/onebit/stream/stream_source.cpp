#include "onebit/stream/stream_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/stream/parquet_documents.h"
#include "onebit/stream/shard_order.h"
#include "onebit/stream/shard_owner.h"

namespace onebit::stream {
namespace {

using Clock = std::chrono::steady_clock;

json weights_json(const std::vector<LanguageWeight>& weights) {
  json out = json::array();
  for (const auto& w : weights) out.push_back(json::array({w.language, w.weight}));
  return out;
}

// "615.0 KB", "1.20 GB": the fixture's shards and The Stack's both read well.
std::string human_bytes(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  char buf[32];
  if (b < 1e6)
    std::snprintf(buf, sizeof buf, "%.1f KB", b / 1e3);
  else if (b < 1e9)
    std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  return buf;
}

std::vector<bool> owned_by(const StreamConfig& c) {
  OB_CHECK(c.world >= 1 && c.rank >= 0 && c.rank < c.world && c.local_world >= 1 && c.local_world <= c.world,
           "stream: rank ", c.rank, " of ", c.world, " with ", c.local_world, " on this host");
  const std::vector<int> owner = shard_owners(c.manifest, c.weights, c.world);
  std::vector<bool> mine(owner.size());
  for (size_t i = 0; i < owner.size(); ++i) mine[i] = owner[i] == c.rank;
  return mine;
}

// With several ranks, every rank's directory of this job: the host's budget covers the rest.
HostShare host_share(const StreamConfig& c) {
  if (c.world == 1) return {};
  HostShare h{c.local_root, {}};
  for (int r = 0; r < c.world; ++r) h.rank_dirs.push_back(StreamSource::rank_dir(r, c.world));
  return h;
}

}  // namespace

std::string StreamSource::rank_dir(int rank, int world) {
  return world == 1 ? std::string() : cat("rank-", rank, "-of-", world);
}

StreamSource::StreamSource(StreamConfig config, const data::Tokenizer& tok)
    : cfg_(std::move(config)),
      owned_(owned_by(cfg_)),
      root_(cfg_.world == 1 ? cfg_.local_root : cfg_.local_root / rank_dir(cfg_.rank, cfg_.world)),
      budget_(cfg_.budget_bytes / static_cast<uint64_t>(cfg_.local_world)),
      tok_(tok),
      eot_(tok.eos_id()),
      manifest_hash_(data::hash_hex(data::fnv1a64(manifest_to_jsonl(cfg_.manifest)))),
      cache_(root_, budget_, host_share(cfg_)) {
  downloader_ = std::make_unique<ShardDownloader>(cfg_.download, cfg_.manifest, cache_);
  order_ = order_of(epoch_);
  if (order_.empty() && cfg_.world == 1) fail("stack-stream: the manifest has no shard of the languages streamed");
  if (order_.empty()) {
    size_t streamed = 0;
    for (const auto& s : cfg_.manifest.shards)
      for (const auto& w : cfg_.weights) streamed += w.language == s.language && w.weight > 0;
    fail("stack-stream: rank ", cfg_.rank, " of ", cfg_.world, " owns no shard: the languages streamed have ", streamed,
         " shards for ", cfg_.world, " ranks; run at most ", streamed, " ranks");
  }
  if (!cfg_.row_log.empty()) {
    fs::path log = cfg_.row_log;
    if (cfg_.world > 1) log += "." + rank_dir(cfg_.rank, cfg_.world);
    row_log_fd_ = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (row_log_fd_ < 0) fail(printable(log.string(), 4096), ": cannot open the row log");
  }
}

std::vector<size_t> StreamSource::order_of(uint64_t epoch) const {
  return epoch_order(cfg_.manifest, cfg_.weights, cfg_.seed, epoch, owned_);
}

StreamSource::~StreamSource() {
  pipe_.reset();  // the tokenizer threads read a shard file: stop them before anything else goes
  downloader_.reset();
  if (row_log_fd_ >= 0) ::close(row_log_fd_);
}

// Files of shards the stream will not read again this epoch go (a crashed run's leftovers, shards
// done before the checkpoint). Of the shards ahead, those the downloader would reserve before it
// needs any room back (a prefix of the order within the budget) keep what they have on disk, so a
// kill does not cost their download; files of shards further ahead would hold room the next shard
// needs, so they go too. When the stream loops over epochs and all its shards fit the budget,
// nothing goes: the shards done this epoch are kept (finished, evictable) for the next one.
void StreamSource::start() {
  uint64_t all_bytes = 0;
  for (size_t i = 0; i < cfg_.manifest.shards.size(); ++i)
    if (owned_[i]) all_bytes += cfg_.manifest.shards[i].size;
  const bool keep_all = cfg_.loop_epochs && all_bytes <= budget_;
  std::set<size_t> ahead;
  uint64_t ahead_bytes = 0;
  for (size_t p = pos_; p < order_.size(); ++p) {
    ahead_bytes += shard_at(p).size;
    if (ahead_bytes > budget_) break;
    ahead.insert(order_[p]);
  }
  for (size_t i = 0; i < cfg_.manifest.shards.size(); ++i) {
    const std::string& path = cfg_.manifest.shards[i].path;
    if (ahead.count(i) || !fs::exists((root_ / path).parent_path())) continue;
    if (keep_all && owned_[i])
      cache_.adopt_finished(path);
    else
      cache_.release(path);
  }
  downloader_->plan(order_, pos_);
  started_ = true;
  started_at_ = Clock::now();
}

void StreamSource::new_epoch(uint64_t epoch) {
  epoch_ = epoch;
  order_ = order_of(epoch_);
  pos_ = 0;
  row_ = shard_tokens_ = 0;
  shards_done_ = 0;
  epoch_had_rows_ = false;
  log_info("stream: starting epoch ", epoch_, " (", order_.size(), " shards)");
  downloader_->plan(order_, 0);
}

bool StreamSource::open_shard() {
  const Shard& s = shard_at(pos_);
  std::string why;
  if (!downloader_->wait(pos_, why)) {
    log_warn("stream: skipping shard ", printable(s.path), " (", pos_ + 1, "/", order_.size(), " of epoch ", epoch_,
             "): ", why);
    skipped_.push_back(json{{"epoch", epoch_}, {"path", s.path}, {"error", why}});
    ++pos_;
    row_ = shard_tokens_ = 0;
    ++shards_done_;
    return false;
  }
  try {
    auto reader = std::make_unique<ParquetDocuments>(root_ / s.path, cfg_.column, row_);
    reader_ = reader.get();
    pipe_ = std::make_unique<data::ParallelTokenizer>(std::move(reader), tok_, cfg_.threads);
  } catch (const Error& e) {
    // The file passed its sha256, so this is a shard our reader cannot read: skip it, do not stop.
    reader_ = nullptr;
    log_warn("stream: skipping shard ", printable(s.path), ": ", e.what());
    skipped_.push_back(json{{"epoch", epoch_}, {"path", s.path}, {"error", e.what()}});
    cache_.finish(s.path);
    ++pos_;
    row_ = shard_tokens_ = 0;
    ++shards_done_;
    return false;
  }
  batch_.clear();
  batch_idx_ = 0;
  return true;
}

void StreamSource::close_shard(const char* why) {
  pipe_.reset();
  reader_ = nullptr;
  const Shard& s = shard_at(pos_);
  cache_.finish(s.path);
  log_debug("stream: ", printable(s.path), " ", why, " at row ", row_);
  ++pos_;
  row_ = shard_tokens_ = 0;
  ++shards_done_;
}

bool StreamSource::pull_document() {
  while (true) {
    if (!pipe_) {
      if (pos_ >= order_.size()) return false;
      if (!open_shard()) continue;
    }
    if (cfg_.shard_token_cap > 0 && shard_tokens_ >= cfg_.shard_token_cap) {
      rows_capped_ += reader_->rows() - std::min(reader_->rows(), row_);
      close_shard("left (--steps-per-shard)");
      continue;
    }
    if (batch_idx_ >= batch_.size()) {
      batch_idx_ = 0;
      bool more = false;
      try {
        more = pipe_->next(batch_);
      } catch (const Error& e) {
        log_warn("stream: skipping the rest of shard ", printable(shard_at(pos_).path), " from row ", row_, ": ",
                 e.what());
        skipped_.push_back(
            json{{"epoch", epoch_}, {"path", shard_at(pos_).path}, {"from_row", row_}, {"error", e.what()}});
        batch_.clear();
      }
      if (!more) close_shard("read");
      continue;
    }
    data::TokenizedDoc& d = batch_[batch_idx_++];
    const uint64_t n = d.ids.size() + (eot_ ? 1 : 0);
    carry_.insert(carry_.end(), d.ids.begin(), d.ids.end());
    if (eot_) carry_.push_back(*eot_);
    docs_.push_back(DocRec{epoch_, pos_, order_[pos_], d.offset, n, 0, shard_tokens_});
    row_ = d.offset + 1;
    shard_tokens_ += n;
    epoch_had_rows_ = true;
    return true;
  }
}

size_t StreamSource::ensure(size_t need) {
  if (carry_.size() - head_ >= need) return need;
  if (!started_) start();
  const auto t0 = Clock::now();
  while (carry_.size() - head_ < need) {
    if (pull_document()) continue;
    if (!cfg_.loop_epochs) break;
    if (!epoch_had_rows_) fail("stack-stream: a whole epoch over ", order_.size(), " shards gave no rows to train on");
    new_epoch(epoch_ + 1);
  }
  wait_ += Clock::now() - t0;
  wait_total_ += Clock::now() - t0;
  return std::min(need, carry_.size() - head_);
}

void StreamSource::log_row(const DocRec& d) {
  if (row_log_fd_ >= 0) {
    const std::string line =
        cat(rows_trained_, " ", d.epoch, " ", cfg_.manifest.shards[d.shard].path, " ", d.row, "\n");
    // One write per line with O_APPEND: a kill leaves whole lines (at most the last one cut).
    if (::write(row_log_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      fail(printable(cfg_.row_log.string(), 4096), ": cannot write the row log");
  }
  ++rows_trained_;
}

void StreamSource::consume(size_t n) {
  head_ += n;
  tokens_trained_ += n;
  while (n > 0) {
    DocRec& d = docs_.front();
    const uint64_t k = std::min<uint64_t>(n, d.tokens - d.consumed);
    d.consumed += k;
    n -= static_cast<size_t>(k);
    if (d.consumed == d.tokens) {
      log_row(d);
      docs_.pop_front();
    }
  }
  if (head_ > (1u << 20) && head_ * 2 > carry_.size()) {
    carry_.erase(carry_.begin(), carry_.begin() + static_cast<long>(head_));
    head_ = 0;
  }
}

void StreamSource::next_batch(int B, int T, int32_t* inputs, int32_t* targets) {
  const size_t window = static_cast<size_t>(T) + 1;
  for (int b = 0; b < B; ++b) {
    int32_t* in = inputs + static_cast<size_t>(b) * T;
    int32_t* tg = targets + static_cast<size_t>(b) * T;
    const size_t have = ensure(window);
    const int32_t* w = carry_.data() + head_;
    if (have == window) {
      std::copy(w, w + T, in);
      std::copy(w + 1, w + T + 1, tg);
      consume(static_cast<size_t>(T));
      continue;
    }
    // The end of a one-pass stream: the rest, then ignored targets. Everything left is consumed,
    // so the last row's last token is a target here and the row counts as trained.
    std::fill(in, in + T, 0);
    std::fill(tg, tg + T, -1);
    if (have >= 2) {
      std::copy(w, w + have - 1, in);
      std::copy(w + 1, w + have, tg);
    }
    if (have > 0) consume(have);
  }
}

bool StreamSource::at_end() {
  if (cfg_.loop_epochs) return false;
  const size_t have = ensure(2);
  if (have >= 2) return false;
  // A lone token left was already the target of the previous window: its row is trained.
  if (have == 1) consume(1);
  return true;
}

json StreamSource::state() const {
  json s{{"kind", "stack_stream"},
         {"dataset", cfg_.download.repo},
         {"revision", cfg_.download.revision},
         {"manifest", manifest_hash_},
         {"weights", weights_json(cfg_.weights)},
         {"column", cfg_.column},
         {"shard_token_cap", cfg_.shard_token_cap},
         {"tokenizer", data::hash_hex(tok_.hash())},
         {"epoch", epoch_},
         {"rows_trained", rows_trained_},
         {"rows_capped", rows_capped_},
         {"skipped", skipped_}};
  if (cfg_.world > 1) s["rank"] = cfg_.rank;
  if (!docs_.empty()) {
    const DocRec& d = docs_.front();
    s["epoch"] = d.epoch;
    s["path"] = cfg_.manifest.shards[d.shard].path;
    s["shard"] = d.pos;
    s["row"] = d.row;
    s["skip"] = d.consumed;
    s["doc_tokens"] = d.tokens;
    s["shard_tokens"] = d.shard_tokens;
  } else {
    s["shard"] = pos_;
    s["row"] = row_;
    s["skip"] = 0;
    s["doc_tokens"] = nullptr;
    s["shard_tokens"] = shard_tokens_;
    if (pos_ < order_.size()) s["path"] = shard_at(pos_).path;
  }
  return s;
}

void StreamSource::restore(const json& s) {
  const std::string where = "data state";
  const auto same = [&](const char* key, const json& now, const char* flag) {
    if (!s.contains(key) || s[key] != now)
      fail(where, ": \"", key, "\" was ", s.contains(key) ? printable(s[key].dump()) : std::string("missing"),
           " at the checkpoint, now ", printable(now.dump()), " (", flag, " changed since the checkpoint)");
  };
  const std::string kind = json_get<std::string>(s, "kind", where);
  if (kind != "stack_stream")
    fail(where, ": saved for a \"", printable(kind), "\" source, but the data is ", describe());
  same("dataset", cfg_.download.repo, "--dataset-id");
  same("revision", cfg_.download.revision, "the manifest's revision");
  same("manifest", manifest_hash_, "<output-dir>/manifest.jsonl");
  same("weights", weights_json(cfg_.weights), "--languages");
  same("column", cfg_.column, "--column");
  same("shard_token_cap", cfg_.shard_token_cap, "--steps-per-shard or the tokens per step");
  same("tokenizer", data::hash_hex(tok_.hash()), "--tokenizer");
  if (cfg_.world > 1) same("rank", cfg_.rank, "the rank's place in the job");
  epoch_ = json_get<uint64_t>(s, "epoch", where);
  order_ = order_of(epoch_);
  const uint64_t pos = json_get<uint64_t>(s, "shard", where);
  if (pos > order_.size()) fail(where, ": \"shard\" ", pos, " is past the epoch's ", order_.size(), " shards");
  pos_ = static_cast<size_t>(pos);
  row_ = json_get<uint64_t>(s, "row", where);
  shard_tokens_ = json_get<uint64_t>(s, "shard_tokens", where);
  rows_trained_ = json_get<uint64_t>(s, "rows_trained", where);
  rows_capped_ = json_get<uint64_t>(s, "rows_capped", where);
  if (!s.contains("skipped") || !s["skipped"].is_array()) fail(where, ": key \"skipped\" must be an array");
  skipped_ = s["skipped"];
  shards_done_ = pos_;
  epoch_had_rows_ = true;  // resuming mid-epoch: rows were seen before
  const uint64_t skip = json_get<uint64_t>(s, "skip", where);
  carry_.clear();
  head_ = 0;
  docs_.clear();
  pipe_.reset();
  reader_ = nullptr;
  start();
  if (skip > 0) {
    const uint64_t expect = json_get<uint64_t>(s, "doc_tokens", where);
    const size_t want_pos = pos_;
    const uint64_t want_row = row_;
    if (!pull_document() || docs_.front().pos != want_pos || docs_.front().row != want_row ||
        docs_.front().tokens != expect)
      fail(where, ": row ", row_, " of shard ", pos_, " does not have the ", expect,
           " tokens the checkpoint saw (the data or tokenizer changed)");
    if (skip >= expect) fail(where, ": \"skip\" ", skip, " must be less than \"doc_tokens\" ", expect);
    consume(static_cast<size_t>(skip));
  }
}

uint64_t StreamSource::estimate_pass_tokens(uint64_t sample_tokens) {
  OB_CHECK(docs_.empty() || docs_.front().consumed == 0, "estimate_pass_tokens after training started");
  ensure(static_cast<size_t>(sample_tokens));
  const uint64_t tokens = carry_.size() - head_;
  // Parquet bytes behind those tokens: the shards read (or skipped) whole, and the row fraction
  // of the one being read.
  double bytes = 0;
  for (size_t p = 0; p < std::min(pos_, order_.size()); ++p) bytes += static_cast<double>(shard_at(p).size);
  if (pipe_ && reader_ && reader_->rows() > 0)
    bytes += static_cast<double>(shard_at(pos_).size) * static_cast<double>(std::min(row_, reader_->rows())) /
             static_cast<double>(reader_->rows());
  if (pos_ >= order_.size()) {  // the whole pass is buffered: counted, not estimated
    log_info("stream: one pass over ", order_.size(), " shards is ", tokens, " tokens (all read ahead)");
    return tokens;
  }
  const double per_byte = bytes > 0 ? static_cast<double>(tokens) / bytes : 0.0;
  double total = 0, all_bytes = 0;
  for (size_t p = 0; p < order_.size(); ++p) {
    double t = per_byte * static_cast<double>(shard_at(p).size);
    if (cfg_.shard_token_cap > 0) t = std::min(t, static_cast<double>(cfg_.shard_token_cap));
    total += t;
    all_bytes += static_cast<double>(shard_at(p).size);
  }
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.3f", per_byte);
  log_info("stream: ", ratio, " tokens per parquet byte over the first ", tokens, " tokens (", human_bytes(static_cast<uint64_t>(bytes)),
           " of parquet); one pass over ", order_.size(), " shards (", human_bytes(static_cast<uint64_t>(all_bytes)),
           ") is about ", static_cast<uint64_t>(total), " tokens");
  return static_cast<uint64_t>(total);
}

std::string StreamSource::describe() const {
  return cat(cfg_.download.repo, "@", cfg_.download.revision.substr(0, 12), ": ", cfg_.manifest.shards.size(),
             " shards, ", order_.size(), " streamed per epoch (parquet column \"", printable(cfg_.column),
             "\", disk budget ", human_bytes(budget_),
             cfg_.world > 1 ? cat(" for rank ", cfg_.rank, "'s ", order_.size(), " shards under ", printable(rank_dir(cfg_.rank, cfg_.world)),
                                  ", its share of ", human_bytes(cfg_.budget_bytes), " on a host of ", cfg_.local_world,
                                  " ranks")
                            : std::string(),
             ")");
}

json StreamSource::step_metrics() {
  const auto now = Clock::now();
  // Walking the local root costs a directory listing: at most once a second.
  if (now - disk_checked_ > std::chrono::seconds(1)) {
    disk_bytes_ = cache_.bytes_on_disk();
    disk_checked_ = now;
  }
  disk_peak_ = std::max(disk_peak_, disk_bytes_);
  json m{{"data_wait_ms", std::chrono::duration<double, std::milli>(wait_).count()},
         {"disk_bytes", disk_bytes_},
         {"disk_budget", budget_},
         {"epoch", epoch_},
         {"shards_done", shards_done_},
         {"shards_total", order_.size()},
         {"shards_skipped", skipped_.size()},
         {"rows_trained", rows_trained_},
         {"downloaded_bytes", downloader_->bytes_downloaded()}};
  wait_ = {};
  return m;
}

std::string StreamSource::progress() const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - started_at_).count();
  const double wait = std::chrono::duration<double>(wait_total_).count();
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.1f%%", elapsed > 0 ? 100.0 * wait / elapsed : 0.0);
  return cat("| shards ", shards_done_, "/", order_.size(), " (epoch ", epoch_, "), ",
             human_bytes(downloader_->bytes_downloaded()), " downloaded, disk ", human_bytes(disk_bytes_), " of ",
             human_bytes(budget_), ", ", tokens_trained_, " tokens, data wait ", pct);
}

}  // namespace onebit::stream
