#include "onebit/data/jsonl_stream.h"

#include <cmath>

#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/data/token_sequence.h"

namespace onebit::data {

JsonlStreamSource::JsonlStreamSource(fs::path path, const Tokenizer& tok, ReadOptions read_opts, int threads,
                                     uint64_t train_offset, uint64_t train_line)
    : path_(std::move(path)), tok_(tok), eos_(tok.eos_id()), read_opts_(std::move(read_opts)), threads_(threads),
      train_offset_(train_offset), train_line_(train_line), next_offset_(train_offset), next_line_(train_line) {
  // The reader threads start on the first batch, so a Dataset opened only for its val split reads nothing more.
}

void JsonlStreamSource::start(uint64_t offset, uint64_t line) {
  pipe_.reset();
  pipe_ = std::make_unique<ParallelTokenizer>(open_documents(path_, read_opts_, offset, line), tok_, threads_);
  batch_.clear();
  batch_idx_ = 0;
  next_offset_ = offset;
  next_line_ = line;
}

bool JsonlStreamSource::pull_document() {
  if (!pipe_) start(next_offset_, next_line_);
  while (batch_idx_ >= batch_.size()) {
    batch_idx_ = 0;
    if (!pipe_->next(batch_)) return false;
  }
  TokenizedDoc& d = batch_[batch_idx_++];
  uint64_t n = d.ids.size() + (eos_ ? 1 : 0);
  carry_.insert(carry_.end(), d.ids.begin(), d.ids.end());
  if (eos_) carry_.push_back(*eos_);
  docs_.push_back(DocRec{d.offset, d.line, n, 0});
  next_offset_ = d.next_offset;
  next_line_ = d.line + 1;
  ++docs_this_epoch_;
  return true;
}

void JsonlStreamSource::ensure(size_t need) {
  while (carry_.size() - head_ < need) {
    if (pull_document()) continue;
    if (docs_this_epoch_ == 0)
      fail(printable(path_.string(), 4096), ": no training documents after byte ", train_offset_,
           " (every document is held out for validation or the file is empty)");
    ++epoch_;
    log_info("data: ", path_.string(), ": end of file, starting epoch ", epoch_);
    docs_this_epoch_ = 0;
    start(train_offset_, train_line_);
  }
}

void JsonlStreamSource::consume(size_t n) {
  head_ += n;
  while (n > 0) {
    DocRec& d = docs_.front();
    uint64_t k = std::min<uint64_t>(n, d.tokens - d.consumed);
    d.consumed += k;
    n -= static_cast<size_t>(k);
    if (d.consumed == d.tokens) docs_.pop_front();
  }
  if (head_ > (1u << 20) && head_ * 2 > carry_.size()) {
    carry_.erase(carry_.begin(), carry_.begin() + static_cast<long>(head_));
    head_ = 0;
  }
}

void JsonlStreamSource::next_batch(int B, int T, int32_t* inputs, int32_t* targets) {
  for (int b = 0; b < B; ++b) {
    ensure(static_cast<size_t>(T) + 1);
    const int32_t* w = carry_.data() + head_;
    std::copy(w, w + T, inputs + static_cast<size_t>(b) * T);
    std::copy(w + 1, w + T + 1, targets + static_cast<size_t>(b) * T);
    consume(static_cast<size_t>(T));
  }
}

json JsonlStreamSource::state() const {
  json s{{"kind", "jsonl_stream"}, {"file", path_.string()}, {"epoch", epoch_}, {"tokenizer", hash_hex(tok_.hash())},
         {"train_offset", train_offset_}};
  if (!docs_.empty()) {
    const DocRec& d = docs_.front();
    s["offset"] = d.offset;
    s["line"] = d.line;
    s["skip"] = d.consumed;
    s["doc_tokens"] = d.tokens;
  } else {
    s["offset"] = next_offset_;
    s["line"] = next_line_;
    s["skip"] = 0;
    s["doc_tokens"] = nullptr;
  }
  return s;
}

void JsonlStreamSource::restore(const json& s) {
  const std::string where = "data state";
  // The state comes from trainer_state.json: what it names is escaped before it goes into an error.
  const std::string kind = json_get<std::string>(s, "kind", where);
  if (kind != "jsonl_stream")
    fail(where, ": saved for a \"", printable(kind), "\" source, but the data is ", describe());
  const std::string saved_hash = json_get<std::string>(s, "tokenizer", where);
  if (saved_hash != hash_hex(tok_.hash()))
    fail(where, ": saved with tokenizer hash ", printable(saved_hash), ", but the tokenizer now has hash ",
         hash_hex(tok_.hash()));
  const uint64_t saved_offset = json_get<uint64_t>(s, "train_offset", where);
  if (saved_offset != train_offset_)
    fail(where, ": the validation hold-out changed since the checkpoint (training started at byte ", saved_offset,
         ", now at ", train_offset_, "); use the same --val-fraction");
  epoch_ = json_get<uint64_t>(s, "epoch", where);
  const uint64_t offset = json_get<uint64_t>(s, "offset", where);
  const uint64_t line = json_get<uint64_t>(s, "line", where);
  const uint64_t skip = json_get<uint64_t>(s, "skip", where);
  carry_.clear();
  head_ = 0;
  docs_.clear();
  docs_this_epoch_ = 1;  // resuming mid-epoch: documents were seen before
  start(offset, line);
  if (skip > 0) {
    if (!pull_document())
      fail(where, ": ", printable(path_.string(), 4096), " has no document at byte ", offset,
           " (the file changed since the checkpoint)");
    const uint64_t expect = json_get<uint64_t>(s, "doc_tokens", where);
    if (docs_.front().offset != offset || docs_.front().tokens != expect)
      fail(where, ": the document at byte ", offset, " of ", printable(path_.string(), 4096), " has ", docs_.front().tokens,
           " tokens, the checkpoint saw ", expect, " (the file changed since the checkpoint)");
    // state() never saves a finished document, so skip < doc_tokens; more would consume past it.
    if (skip >= expect) fail(where, ": \"skip\" ", skip, " must be less than \"doc_tokens\" ", expect);
    consume(static_cast<size_t>(skip));
  }
}

std::string JsonlStreamSource::describe() const { return cat(printable(path_.string(), 4096), " (streaming JSONL, train)"); }

Dataset open_jsonl_stream(const DataOptions& opts, const Tokenizer& tok) {
  const fs::path path(opts.path);
  ReadOptions ro;
  ro.text_field = opts.text_field;
  ro.skip_bad_lines = opts.skip_bad_lines;

  int64_t n_val = opts.val_documents;
  if (n_val < 0) {
    if (opts.val_fraction <= 0) {
      n_val = 0;
    } else {
      constexpr uint64_t kProbe = 8u << 20;
      auto r = open_documents(path, ro);
      Document d;
      uint64_t count = 0;
      while (d.next_offset < kProbe && r->next(d)) ++count;
      if (count < 2) fail(printable(path.string(), 4096), ": needs at least 2 documents to hold some out for validation, found ", count);
      n_val = std::max<int64_t>(1, std::llround(opts.val_fraction * static_cast<double>(count)));
      n_val = std::min<int64_t>(n_val, static_cast<int64_t>(count) - 1);
    }
  }

  Dataset ds;
  ds.streaming = true;
  uint64_t train_offset = 0, train_line = 1;
  if (n_val > 0) {
    auto r = open_documents(path, ro);
    Document d;
    std::vector<int32_t> ids;
    const auto eos = tok.eos_id();
    for (int64_t i = 0; i < n_val; ++i) {
      if (!r->next(d)) fail(printable(path.string(), 4096), ": --val-documents ", n_val, " but the file has only ", i, " documents");
      auto t = tok.encode(d.text);
      ids.insert(ids.end(), t.begin(), t.end());
      if (eos) ids.push_back(*eos);
      train_offset = d.next_offset;
      train_line = d.line + 1;
    }
    ds.val_tokens = ids.size();
    ds.val = std::make_unique<ValSource>(std::make_shared<TokenVector>(std::move(ids)), tok,
                                         cat(path.string(), " (val: first ", n_val, " documents, ", ds.val_tokens, " tokens)"));
  }
  ds.train = std::make_unique<JsonlStreamSource>(path, tok, ro, opts.threads, train_offset, train_line);
  ds.description = cat(path.string(), " (streaming JSONL; ", n_val, " documents held out for validation)");
  return ds;
}

}  // namespace onebit::data
