#pragma once
// A read-only run of token ids: a slice of a memory-mapped .tokens file or an in-memory vector.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "onebit/data/token_file.h"

namespace onebit::data {

class TokenSequence {
 public:
  virtual ~TokenSequence() = default;
  virtual uint64_t size() const = 0;
  virtual void read(uint64_t start, size_t n, int32_t* out) const = 0;
};

class TokenFileSlice final : public TokenSequence {
 public:
  TokenFileSlice(std::shared_ptr<const TokenFile> file, uint64_t begin, uint64_t end)
      : file_(std::move(file)), begin_(begin), end_(end) {}
  uint64_t size() const override { return end_ - begin_; }
  void read(uint64_t start, size_t n, int32_t* out) const override { file_->read(begin_ + start, n, out); }

 private:
  std::shared_ptr<const TokenFile> file_;
  uint64_t begin_, end_;
};

class TokenVector final : public TokenSequence {
 public:
  explicit TokenVector(std::vector<int32_t> ids) : ids_(std::move(ids)) {}
  uint64_t size() const override { return ids_.size(); }
  void read(uint64_t start, size_t n, int32_t* out) const override {
    std::copy(ids_.begin() + static_cast<long>(start), ids_.begin() + static_cast<long>(start + n), out);
  }

 private:
  std::vector<int32_t> ids_;
};

}  // namespace onebit::data
