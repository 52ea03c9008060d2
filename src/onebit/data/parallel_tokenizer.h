#pragma once
// Tokenizes a stream of documents on worker threads and hands them back in input order, so the
// resulting token stream is the same whatever the thread count or timing. Tokenizer::encode must be
// safe to call concurrently (it is const).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "onebit/data/documents.h"
#include "onebit/data/tokenizer.h"

namespace onebit::data {

struct TokenizedDoc {
  std::vector<int32_t> ids;  // the document's tokens, without any EOS
  uint64_t offset = 0, next_offset = 0, line = 0;
  bool ends_document = true;
  uint64_t text_bytes = 0;
};

class ParallelTokenizer {
 public:
  // threads <= 0: hardware concurrency. batch_bytes: text per work item.
  ParallelTokenizer(std::unique_ptr<DocumentReader> reader, const Tokenizer& tok, int threads = 0,
                    size_t batch_bytes = 1 << 20);
  ~ParallelTokenizer();
  ParallelTokenizer(const ParallelTokenizer&) = delete;
  ParallelTokenizer& operator=(const ParallelTokenizer&) = delete;

  // The next batch of documents in input order; false at end. A reader or tokenizer error is
  // rethrown here, after every batch that precedes it.
  bool next(std::vector<TokenizedDoc>& out);
  // Reader statistics; complete once next() has returned false.
  ReadStats stats() const;
  uint64_t raw_bytes_read() const;

 private:
  struct Item {
    std::vector<Document> docs;
    std::vector<TokenizedDoc> out;
    std::exception_ptr error;
    bool last = false;
  };
  void read_loop();
  void work_loop();

  std::unique_ptr<DocumentReader> reader_;
  const Tokenizer& tok_;
  size_t batch_bytes_;
  size_t max_in_flight_;

  mutable std::mutex mu_;
  std::condition_variable cv_work_, cv_done_, cv_space_;
  std::map<uint64_t, std::unique_ptr<Item>> todo_;  // seq → item waiting for a worker
  std::map<uint64_t, std::unique_ptr<Item>> done_;  // seq → finished item
  uint64_t next_read_seq_ = 0, next_out_seq_ = 0;
  size_t in_flight_ = 0;
  bool stop_ = false, finished_ = false;
  // stop_ without the lock, for the reader between documents: an early destruction (the consumer
  // failed) does not wait for a whole batch of input to be read first.
  std::atomic<bool> stopping_{false};
  ReadStats final_stats_;
  uint64_t raw_bytes_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace onebit::data
