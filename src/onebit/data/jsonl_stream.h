#pragma once
// `onebit train --data file.jsonl[.gz|.zst]`: a BatchSource that never loads the file. A background
// ParallelTokenizer reads and tokenizes documents ahead; documents (each followed by EOS) are packed
// back to back into rows of T+1 tokens, consecutive rows overlapping by one token so every token
// is a target exactly once per epoch. The token stream depends only on the file and the tokenizer
// (never on thread timing), so a seed and a state give the same batches on every run.
//
// Validation = the first N documents of the file (N = DataOptions::val_documents, or auto, see
// dataset.h); training starts after them and, at end of file, loops back there (next epoch).
//
// state(): {"kind":"jsonl_stream","epoch","offset","line","skip","doc_tokens",...}: the decompressed
// byte offset of the line holding the next unconsumed token, how many of that document's tokens
// (EOS included) were already consumed, and the epoch. restore() re-reads from that offset.
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "onebit/data/batch_source.h"
#include "onebit/data/dataset.h"
#include "onebit/data/documents.h"
#include "onebit/data/parallel_tokenizer.h"

namespace onebit::data {

class JsonlStreamSource final : public BatchSource {
 public:
  // Training reads [train_offset, end of file), looping back to train_offset. `tok` must outlive
  // this source (documents are tokenized on background threads while it lives).
  JsonlStreamSource(fs::path path, const Tokenizer& tok, ReadOptions read_opts, int threads, uint64_t train_offset,
                    uint64_t train_line);
  void next_batch(int B, int T, int32_t* inputs, int32_t* targets) override;
  json state() const override;
  void restore(const json& state) override;
  std::string describe() const override;
  uint64_t epoch() const { return epoch_; }

 private:
  struct DocRec {
    uint64_t offset, line, tokens, consumed;
  };
  void start(uint64_t offset, uint64_t line);
  bool pull_document();  // moves one document into carry_; false at end of this epoch's file
  void ensure(size_t need);
  void consume(size_t n);

  fs::path path_;
  const Tokenizer& tok_;
  std::optional<int32_t> eos_;
  ReadOptions read_opts_;
  int threads_;
  uint64_t train_offset_, train_line_;
  uint64_t next_offset_, next_line_;  // the first document not yet in carry_

  std::unique_ptr<ParallelTokenizer> pipe_;
  std::vector<TokenizedDoc> batch_;
  size_t batch_idx_ = 0;
  std::vector<int32_t> carry_;
  size_t head_ = 0;
  std::deque<DocRec> docs_;  // documents with tokens in carry_[head_..], oldest first
  uint64_t epoch_ = 0;
  uint64_t docs_this_epoch_ = 0;
};

// Opens a JSONL file as a Dataset (streaming train + in-memory val of the first documents).
Dataset open_jsonl_stream(const DataOptions& opts, const Tokenizer& tok);

}  // namespace onebit::data
