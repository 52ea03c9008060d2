#include "onebit/data/byte_stream.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "onebit/core/error.h"

namespace onebit::data {
namespace {

class FdReader {
 public:
  FdReader(const fs::path& path, const std::string& name) : name_(name) {
    if (path == "-") {
      fd_ = STDIN_FILENO;
      owned_ = false;
    } else {
      fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) fail(name, ": cannot open: ", std::strerror(errno));
    }
  }
  ~FdReader() {
    if (owned_ && fd_ >= 0) ::close(fd_);
  }
  size_t read(char* out, size_t n) {
    for (;;) {
      ssize_t r = ::read(fd_, out, n);
      if (r >= 0) {
        bytes_ += static_cast<uint64_t>(r);
        return static_cast<size_t>(r);
      }
      if (errno != EINTR) fail(name_, ": read error: ", std::strerror(errno));
    }
  }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string name_;
  int fd_ = -1;
  bool owned_ = true;
  uint64_t bytes_ = 0;
};

class PlainStream final : public ByteStream {
 public:
  explicit PlainStream(const fs::path& path) : in_(path, path == "-" ? "<stdin>" : path.string()) {
    name_ = path == "-" ? "<stdin>" : path.string();
  }
  size_t read(char* out, size_t n) override { return in_.read(out, n); }
  uint64_t raw_bytes_read() const override { return in_.bytes(); }

 private:
  FdReader in_;
};

class ZstdStream final : public ByteStream {
 public:
  explicit ZstdStream(const fs::path& path) : in_(path, path.string()), buf_(ZSTD_DStreamInSize()) {
    name_ = path.string();
    ds_ = ZSTD_createDStream();
    if (!ds_) fail(name_, ": cannot create a zstd decoder");
    ZSTD_initDStream(ds_);
  }
  ~ZstdStream() override { ZSTD_freeDStream(ds_); }
  size_t read(char* out, size_t n) override {
    ZSTD_outBuffer ob{out, n, 0};
    while (ob.pos == 0) {
      if (zin_.pos == zin_.size) {
        size_t got = in_.read(buf_.data(), buf_.size());
        if (got == 0) {
          // A frame that began but never ended means the file was cut short.
          if (last_ret_ != 0) fail(name_, ": truncated zstd stream");
          return 0;
        }
        zin_ = ZSTD_inBuffer{buf_.data(), got, 0};
      }
      size_t ret = ZSTD_decompressStream(ds_, &ob, &zin_);
      if (ZSTD_isError(ret)) fail(name_, ": corrupt zstd data: ", ZSTD_getErrorName(ret));
      last_ret_ = ret;
    }
    return ob.pos;
  }
  uint64_t raw_bytes_read() const override { return in_.bytes(); }

 private:
  FdReader in_;
  std::vector<char> buf_;
  ZSTD_DStream* ds_ = nullptr;
  ZSTD_inBuffer zin_{nullptr, 0, 0};
  size_t last_ret_ = 0;
};

class GzipStream final : public ByteStream {
 public:
  explicit GzipStream(const fs::path& path) : in_(path, path.string()), buf_(1 << 16) {
    name_ = path.string();
    std::memset(&zs_, 0, sizeof zs_);
    // 16 + MAX_WBITS: gzip wrapper; multi-member files are handled by resetting at each member end.
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) fail(name_, ": cannot create a gzip decoder");
  }
  ~GzipStream() override { inflateEnd(&zs_); }
  size_t read(char* out, size_t n) override {
    zs_.next_out = reinterpret_cast<Bytef*>(out);
    zs_.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    const uInt want = zs_.avail_out;
    while (zs_.avail_out == want) {
      if (zs_.avail_in == 0) {
        size_t got = in_.read(buf_.data(), buf_.size());
        if (got == 0) {
          if (mid_member_) fail(name_, ": truncated gzip stream");
          return 0;
        }
        zs_.next_in = reinterpret_cast<Bytef*>(buf_.data());
        zs_.avail_in = static_cast<uInt>(got);
      }
      int ret = inflate(&zs_, Z_NO_FLUSH);
      if (ret == Z_STREAM_END) {
        mid_member_ = false;
        inflateReset(&zs_);
        continue;
      }
      if (ret != Z_OK && ret != Z_BUF_ERROR)
        fail(name_, ": corrupt gzip data: ", zs_.msg ? zs_.msg : "inflate failed");
      mid_member_ = true;
    }
    return want - zs_.avail_out;
  }
  uint64_t raw_bytes_read() const override { return in_.bytes(); }

 private:
  FdReader in_;
  std::vector<char> buf_;
  z_stream zs_;
  bool mid_member_ = false;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Compression compression_of(const fs::path& path) {
  std::string s = path.filename().string();
  if (ends_with(s, ".gz")) return Compression::Gzip;
  if (ends_with(s, ".zst") || ends_with(s, ".zstd")) return Compression::Zstd;
  return Compression::None;
}

std::unique_ptr<ByteStream> open_byte_stream(const fs::path& path) {
  if (path == "-") return std::make_unique<PlainStream>(path);
  switch (compression_of(path)) {
    case Compression::Gzip: return std::make_unique<GzipStream>(path);
    case Compression::Zstd: return std::make_unique<ZstdStream>(path);
    case Compression::None: break;
  }
  return std::make_unique<PlainStream>(path);
}

}  // namespace onebit::data
