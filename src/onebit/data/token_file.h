#pragma once
// .tokens files (DESIGN.md "Files"): a 64-byte little-endian header, then raw little-endian ids.
//   offset 0  char[8]  magic "OBTOKENS"
//          8  u32      version (1)
//         12  u32      token width in bytes (2 if vocab_size <= 65536, else 4)
//         16  u32      vocab size
//         20  u32      reserved (0)
//         24  u64      token count
//         32  u64      tokenizer hash (Tokenizer::hash())
//         40  u8[24]   reserved (0)
// The count is written last (the writer patches it at commit), so a truncated or half-written
// file is detected: file size must equal 64 + count * width exactly.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "onebit/core/fs.h"

namespace onebit::data {

struct TokenFileHeader {
  uint32_t version = 1;
  uint32_t token_bytes = 2;
  uint32_t vocab_size = 0;
  uint64_t count = 0;
  uint64_t tokenizer_hash = 0;
};

inline constexpr size_t kTokenFileHeaderBytes = 64;

// 2 if vocab_size <= 65536, else 4.
uint32_t token_width_for_vocab(uint32_t vocab_size);

class TokenFileWriter {
 public:
  TokenFileWriter(const fs::path& path, uint32_t vocab_size, uint64_t tokenizer_hash);
  void append(std::span<const int32_t> ids);  // every id must be in [0, vocab_size)
  uint64_t count() const { return count_; }
  void commit();  // patches the header and renames into place

 private:
  AtomicFileWriter out_;
  TokenFileHeader header_;
  uint64_t count_ = 0;
  std::vector<uint8_t> buf_;
  fs::path path_;
};

// Read-only, memory-mapped. Errors (bad magic, truncated, width/vocab mismatch) name the file.
class TokenFile {
 public:
  explicit TokenFile(const fs::path& path);
  const TokenFileHeader& header() const { return header_; }
  uint64_t size() const { return header_.count; }
  int32_t at(uint64_t i) const;
  // Copies ids [start, start + n) into out; an id >= vocab size is an error naming the file.
  void read(uint64_t start, size_t n, int32_t* out) const;
  // Reads every id once and checks its range (reads check their own range; this checks all).
  void validate() const;
  const fs::path& path() const { return map_.path(); }

 private:
  MappedFile map_;
  TokenFileHeader header_;
  const uint8_t* ids_ = nullptr;
};

}  // namespace onebit::data
