#include "onebit/data/token_file.h"

#include <bit>
#include <cstring>

#include "onebit/core/error.h"

namespace onebit::data {

static_assert(std::endian::native == std::endian::little, ".tokens files are read and written as host little-endian");

namespace {

constexpr char kMagic[8] = {'O', 'B', 'T', 'O', 'K', 'E', 'N', 'S'};
constexpr size_t kFlushBytes = 1 << 20;

void encode_header(const TokenFileHeader& h, uint8_t out[kTokenFileHeaderBytes]) {
  std::memset(out, 0, kTokenFileHeaderBytes);
  std::memcpy(out, kMagic, 8);
  std::memcpy(out + 8, &h.version, 4);
  std::memcpy(out + 12, &h.token_bytes, 4);
  std::memcpy(out + 16, &h.vocab_size, 4);
  std::memcpy(out + 24, &h.count, 8);
  std::memcpy(out + 32, &h.tokenizer_hash, 8);
}

}  // namespace

uint32_t token_width_for_vocab(uint32_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

TokenFileWriter::TokenFileWriter(const fs::path& path, uint32_t vocab_size, uint64_t tokenizer_hash) : out_(path) {
  if (vocab_size == 0) fail(printable(path.string(), 4096), ": vocab size must be positive");
  header_.vocab_size = vocab_size;
  header_.token_bytes = token_width_for_vocab(vocab_size);
  header_.tokenizer_hash = tokenizer_hash;
  uint8_t h[kTokenFileHeaderBytes];
  encode_header(header_, h);  // count 0 until commit: an interrupted file never looks complete
  out_.write(h, sizeof h);
  path_ = path;
}

void TokenFileWriter::append(std::span<const int32_t> ids) {
  const uint32_t v = header_.vocab_size;
  const size_t w = header_.token_bytes;
  size_t old = buf_.size();
  buf_.resize(old + ids.size() * w);
  uint8_t* p = buf_.data() + old;
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t id = ids[i];
    if (id < 0 || static_cast<uint32_t>(id) >= v)
      fail(printable(path_.string(), 4096), ": token id ", id, " is out of range [0, ", v, ")");
    if (w == 2) {
      uint16_t x = static_cast<uint16_t>(id);
      std::memcpy(p + 2 * i, &x, 2);
    } else {
      std::memcpy(p + 4 * i, &id, 4);
    }
  }
  count_ += ids.size();
  if (buf_.size() >= kFlushBytes) {
    out_.write(buf_.data(), buf_.size());
    buf_.clear();
  }
}

void TokenFileWriter::commit() {
  if (!buf_.empty()) {
    out_.write(buf_.data(), buf_.size());
    buf_.clear();
  }
  header_.count = count_;
  uint8_t h[kTokenFileHeaderBytes];
  encode_header(header_, h);
  out_.pwrite(h, sizeof h, 0);
  out_.commit();
}

TokenFile::TokenFile(const fs::path& path) : map_(path) {
  const std::string name = printable(path.string(), 4096);
  if (map_.size() < kTokenFileHeaderBytes)
    fail(name, ": not a .tokens file (", map_.size(), " bytes, shorter than the 64-byte header)");
  const uint8_t* d = map_.data();
  if (std::memcmp(d, kMagic, 8) != 0) fail(name, ": not a .tokens file (bad magic; expected \"OBTOKENS\")");
  std::memcpy(&header_.version, d + 8, 4);
  std::memcpy(&header_.token_bytes, d + 12, 4);
  std::memcpy(&header_.vocab_size, d + 16, 4);
  std::memcpy(&header_.count, d + 24, 8);
  std::memcpy(&header_.tokenizer_hash, d + 32, 8);
  if (header_.version != 1) fail(name, ": unsupported .tokens version ", header_.version, " (this build reads version 1)");
  if (header_.token_bytes != 2 && header_.token_bytes != 4)
    fail(name, ": token width ", header_.token_bytes, " bytes is invalid (must be 2 or 4)");
  if (header_.vocab_size == 0) fail(name, ": vocab size is 0");
  if (header_.token_bytes != token_width_for_vocab(header_.vocab_size))
    fail(name, ": token width ", header_.token_bytes, " bytes does not match vocab size ", header_.vocab_size,
         " (expected ", token_width_for_vocab(header_.vocab_size), ")");
  const uint64_t payload = map_.size() - kTokenFileHeaderBytes;
  if (header_.count > payload / header_.token_bytes || payload != header_.count * header_.token_bytes)
    fail(name, ": truncated or corrupt: header says ", header_.count, " tokens (", header_.count * header_.token_bytes,
         " bytes) but the file holds ", payload, " bytes of ids");
  ids_ = d + kTokenFileHeaderBytes;
}

int32_t TokenFile::at(uint64_t i) const {
  int32_t x;
  read(i, 1, &x);
  return x;
}

void TokenFile::read(uint64_t start, size_t n, int32_t* out) const {
  if (start > header_.count || n > header_.count - start)
    fail(printable(path().string(), 4096), ": read of tokens [", start, ", ", start + n, ") is past the end (", header_.count, " tokens)");
  const uint32_t v = header_.vocab_size;
  uint32_t bad = 0;
  if (header_.token_bytes == 2) {
    const uint8_t* p = ids_ + start * 2;
    for (size_t i = 0; i < n; ++i) {
      uint16_t x;
      std::memcpy(&x, p + 2 * i, 2);
      out[i] = x;
      bad |= static_cast<uint32_t>(x >= v);
    }
  } else {
    std::memcpy(out, ids_ + start * 4, n * 4);
    for (size_t i = 0; i < n; ++i) bad |= static_cast<uint32_t>(static_cast<uint32_t>(out[i]) >= v);
  }
  if (bad) {
    for (size_t i = 0; i < n; ++i)
      if (out[i] < 0 || static_cast<uint32_t>(out[i]) >= v)
        fail(printable(path().string(), 4096), ": token ", start + i, " has id ", out[i], ", out of range for vocab size ", v);
  }
}

void TokenFile::validate() const {
  std::vector<int32_t> buf(1 << 16);
  for (uint64_t s = 0; s < header_.count; s += buf.size()) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), header_.count - s));
    read(s, n, buf.data());
  }
}

}  // namespace onebit::data
