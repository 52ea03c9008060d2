#include "onebit/dist/grad_reducer.h"

#include <algorithm>

#include "onebit/core/error.h"

namespace onebit::dist {

GradientReducer::GradientReducer(Communicator& comm, float* grads, size_t n, size_t bucket_values, Wire wire)
    : comm_(comm), grads_(grads), n_(n), bucket_(bucket_values), wire_(wire) {
  OB_CHECK(bucket_values > 0, "GradientReducer: bucket size 0");
  const size_t count = (n + bucket_values - 1) / bucket_values;
  filled_.assign(count, 0);
  done_.assign(count, false);
}

namespace {
size_t bucket_len(size_t b, size_t bucket, size_t n) { return std::min(bucket, n - b * bucket); }
}  // namespace

void GradientReducer::reduce(size_t b) {
  comm_.all_reduce_sum_overlapped(grads_ + b * bucket_, bucket_len(b, bucket_, n_), wire_);
  done_[b] = true;
  ++reduced_now_;
}

void GradientReducer::ready(size_t offset, size_t count) {
  OB_CHECK(offset + count <= n_, "GradientReducer: range [", offset, ", ", offset + count, ") outside the arena of ", n_);
  for (size_t at = offset; at < offset + count;) {
    const size_t b = at / bucket_;
    const size_t end = std::min(offset + count, (b + 1) * bucket_);
    filled_[b] += end - at;
    OB_CHECK(filled_[b] <= bucket_len(b, bucket_, n_), "GradientReducer: bucket ", b, " marked ready twice");
    if (filled_[b] == bucket_len(b, bucket_, n_)) reduce(b);
    at = end;
  }
}

void GradientReducer::finish() {
  reduced_early_ = reduced_now_;
  for (size_t b = 0; b < done_.size(); ++b)
    if (!done_[b]) reduce(b);
  comm_.join_overlapped();
  std::fill(filled_.begin(), filled_.end(), 0);
  std::fill(done_.begin(), done_.end(), false);
  reduced_now_ = 0;
}

}  // namespace onebit::dist
