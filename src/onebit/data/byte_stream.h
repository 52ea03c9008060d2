#pragma once
// Sequential reading of a file's bytes, decompressing .gz (zlib) and .zst (zstd streaming) on the
// fly; "-" is stdin. Offsets are positions in the decompressed stream.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "onebit/core/fs.h"

namespace onebit::data {

enum class Compression { None, Gzip, Zstd };

// By file name: ".gz" → Gzip, ".zst"/".zstd" → Zstd, else None.
Compression compression_of(const fs::path& path);

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads up to n bytes; returns 0 only at end of stream. Corrupt input is an error naming the file.
  virtual size_t read(char* out, size_t n) = 0;
  // Compressed (on-disk) bytes consumed so far, for progress bars; 0 when unknown.
  virtual uint64_t raw_bytes_read() const = 0;
  const std::string& name() const { return name_; }

 protected:
  std::string name_;
};

// path "-" reads stdin (uncompressed).
std::unique_ptr<ByteStream> open_byte_stream(const fs::path& path);

}  // namespace onebit::data
