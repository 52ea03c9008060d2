#pragma once
// File helpers. Every file that matters is written to a temp name in the same directory, flushed,
// fsync'd and renamed into place, so a crash leaves either the old file or the new one, never half.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace onebit {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path);
void write_file_atomic(const fs::path& path, std::string_view bytes);

// Streams a large file to "<path>.tmp-<pid>" and renames it on commit(); the destructor removes
// the temp file if commit() was never reached (an exception unwound past it).
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(fs::path path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  // Overwrites bytes already written (e.g. a header whose count is known only at the end).
  void pwrite(const void* data, size_t n, uint64_t offset);
  uint64_t bytes_written() const { return written_; }
  void commit();

 private:
  fs::path path_, tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
  bool committed_ = false;
};

// Read-only memory map of a whole file.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const fs::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const fs::path& path() const { return path_; }

 private:
  void reset();
  fs::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// fsync a directory so that a rename inside it survives power loss.
void sync_directory(const fs::path& dir);

}  // namespace onebit
