#include "onebit/data/parallel_tokenizer.h"

#include <algorithm>

#include "onebit/core/error.h"

namespace onebit::data {

ParallelTokenizer::ParallelTokenizer(std::unique_ptr<DocumentReader> reader, const Tokenizer& tok, int threads,
                                     size_t batch_bytes)
    : reader_(std::move(reader)), tok_(tok), batch_bytes_(std::max<size_t>(batch_bytes, 1)) {
  int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  max_in_flight_ = static_cast<size_t>(2 * n + 2);
  threads_.emplace_back([this] { read_loop(); });
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { work_loop(); });
}

ParallelTokenizer::~ParallelTokenizer() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  stopping_.store(true, std::memory_order_relaxed);
  cv_work_.notify_all();
  cv_space_.notify_all();
  cv_done_.notify_all();
  for (auto& t : threads_) t.join();
}

void ParallelTokenizer::read_loop() {
  while (true) {
    auto item = std::make_unique<Item>();
    try {
      size_t bytes = 0;
      Document d;
      while (bytes < batch_bytes_ && !stopping_.load(std::memory_order_relaxed)) {
        if (!reader_->next(d)) {
          item->last = true;
          break;
        }
        bytes += d.text.size() + 64;
        item->docs.push_back(std::move(d));
      }
    } catch (...) {
      item->error = std::current_exception();
      item->last = true;
    }
    std::unique_lock<std::mutex> lk(mu_);
    raw_bytes_ = reader_->raw_bytes_read();
    if (item->last) final_stats_ = reader_->stats();
    cv_space_.wait(lk, [&] { return stop_ || in_flight_ < max_in_flight_; });
    if (stop_) return;
    bool last = item->last;
    ++in_flight_;
    uint64_t seq = next_read_seq_++;
    if (item->error || item->docs.empty())
      done_[seq] = std::move(item);  // nothing to tokenize
    else
      todo_[seq] = std::move(item);
    lk.unlock();
    cv_work_.notify_one();
    cv_done_.notify_all();
    if (last) return;
  }
}

void ParallelTokenizer::work_loop() {
  while (true) {
    std::unique_ptr<Item> item;
    uint64_t seq;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] { return stop_ || !todo_.empty(); });
      if (stop_) return;
      auto it = todo_.begin();
      seq = it->first;
      item = std::move(it->second);
      todo_.erase(it);
    }
    try {
      item->out.resize(item->docs.size());
      for (size_t i = 0; i < item->docs.size(); ++i) {
        Document& d = item->docs[i];
        TokenizedDoc& t = item->out[i];
        try {
          t.ids = tok_.encode(d.text);
        } catch (const Error& e) {
          // The tokenizer knows no file; say which document it failed on.
          fail(d.source ? *d.source : std::string("input"), ":", d.line, ": ", e.what());
        }
        t.offset = d.offset;
        t.next_offset = d.next_offset;
        t.line = d.line;
        t.ends_document = d.ends_document;
        t.text_bytes = d.text.size();
      }
    } catch (...) {
      item->error = std::current_exception();
      item->out.clear();
    }
    item->docs.clear();
    {
      std::lock_guard<std::mutex> lk(mu_);
      done_[seq] = std::move(item);
    }
    cv_done_.notify_all();
  }
}

bool ParallelTokenizer::next(std::vector<TokenizedDoc>& out) {
  out.clear();
  std::unique_ptr<Item> item;
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (finished_) return false;
    cv_done_.wait(lk, [&] { return done_.count(next_out_seq_) > 0; });
    auto it = done_.find(next_out_seq_);
    item = std::move(it->second);
    done_.erase(it);
    ++next_out_seq_;
    --in_flight_;
    if (item->last) finished_ = true;
  }
  cv_space_.notify_one();
  if (item->error) std::rethrow_exception(item->error);
  out = std::move(item->out);
  return !out.empty() || !item->last;
}

ReadStats ParallelTokenizer::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return final_stats_;
}

uint64_t ParallelTokenizer::raw_bytes_read() const {
  std::lock_guard<std::mutex> lk(mu_);
  return raw_bytes_;
}

}  // namespace onebit::data
