#include "onebit/hub/download.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"
#include "onebit/core/log.h"
#include "onebit/core/progress.h"
#include "onebit/hub/hash.h"

namespace onebit::hub {

namespace {

// "bytes A-B/T" -> A and T (T may be "*": unknown).
bool parse_content_range(const std::string& v, uint64_t& first, std::optional<uint64_t>& total) {
  unsigned long long a = 0, b = 0, t = 0;
  if (std::sscanf(v.c_str(), "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
    first = a;
    total = t;
    return true;
  }
  if (std::sscanf(v.c_str(), "bytes %llu-%llu/*", &a, &b) == 2) {
    first = a;
    total.reset();
    return true;
  }
  return false;
}

// The content check the tree API makes possible: sha256 for LFS files, the git blob id otherwise.
std::optional<std::string> content_mismatch(const RepoFile& file, const fs::path& path) {
  if (file.is_lfs()) {
    const std::string got = sha256_file_hex(path);
    if (got != file.sha256) return cat("sha256 ", got, " differs from the tree API's ", file.sha256);
  } else {
    const std::string got = git_blob_sha1_file_hex(path);
    if (got != file.git_oid) return cat("git blob id ", got, " differs from the tree API's ", file.git_oid);
  }
  return std::nullopt;
}

class IncompleteFile {
 public:
  explicit IncompleteFile(fs::path path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(path_.string(), ": cannot create: ", std::strerror(errno));
    const off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) fail(path_.string(), ": cannot seek: ", std::strerror(errno));
    size_ = static_cast<uint64_t>(end);
  }
  ~IncompleteFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  uint64_t size() const { return size_; }
  void truncate() {
    if (::ftruncate(fd_, 0) != 0) fail(path_.string(), ": cannot truncate: ", std::strerror(errno));
    size_ = 0;
  }
  // Appends; false (errno kept in error()) when the disk refuses.
  bool append(const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(size_));
      if (w < 0) {
        if (errno == EINTR) continue;
        error_ = std::strerror(errno);
        return false;
      }
      p += w;
      n -= static_cast<size_t>(w);
      size_ += static_cast<uint64_t>(w);
    }
    return true;
  }
  const std::string& error() const { return error_; }
  void sync_and_close() {
    if (::fsync(fd_) != 0) fail(path_.string(), ": fsync failed: ", std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
  }

 private:
  fs::path path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string error_;
};

}  // namespace

void download_file(HubClient& client, const std::string& repo, const std::string& revision, const RepoFile& file,
                   const fs::path& dest, const BytesCallback& on_bytes) {
  check_repo_path(file.path, "download");
  const std::string what = cat("dataset ", repo, " file \"", printable(file.path), "\"");
  std::error_code ec;
  if (fs::is_regular_file(dest, ec) && fs::file_size(dest, ec) == file.size && !content_mismatch(file, dest)) {
    log_debug(what, ": already complete at ", dest.string());
    if (on_bytes) on_bytes(file.size);
    return;
  }
  fs::create_directories(dest.parent_path());
  fs::path partial = dest;
  partial += ".incomplete";
  const std::string url = dataset_resolve_url(client.endpoint(), repo, revision, file.path);

  auto fail_content = [&](const std::string& why) {
    std::error_code rm;
    fs::remove(partial, rm);
    client.fail_redacted(cat(what, ": ", why, "; the partial download was removed"));
  };

  IncompleteFile out(partial);
  if (out.size() > file.size) out.truncate();  // longer than the file can be: not ours to resume
  if (out.size() > 0) log_info(what, ": resuming at byte ", out.size(), " of ", file.size);
  int failures = 0;
  while (out.size() < file.size) {
    const uint64_t at_start = out.size();
    bool first_chunk = true, overflow = false, bad_range = false, disk_error = false;
    std::optional<uint64_t> announced_total;
    BodySink sink = [&](const HttpResult& head, const char* p, size_t n) {
      if (first_chunk) {
        first_chunk = false;
        if (head.status == 206) {
          uint64_t first = 0;
          const auto cr = head.header("content-range");
          if (!cr || !parse_content_range(*cr, first, announced_total) || first != out.size()) {
            bad_range = true;
            return false;
          }
        } else {
          if (out.size() > 0) out.truncate();  // the server ignored Range: this is the whole file
          if (const auto cl = head.header("content-length")) announced_total = std::strtoull(cl->c_str(), nullptr, 10);
        }
        if (announced_total && *announced_total != file.size) {
          overflow = *announced_total > file.size;
          if (overflow) return false;
        }
      }
      // Never write past the size the tree API promised: a lying server must not fill the disk.
      if (out.size() + n > file.size) {
        overflow = true;
        return false;
      }
      if (!out.append(p, n)) {
        disk_error = true;
        return false;
      }
      if (on_bytes) on_bytes(n);
      return true;
    };
    const auto f = client.fetch(url, out.size() > 0 ? std::optional<uint64_t>(out.size()) : std::nullopt, &sink);
    const HttpResult& r = f.result;
    if (disk_error) fail(partial.string(), ": write failed: ", out.error());
    if (overflow)
      fail_content(cat("the server sends ",
                       announced_total ? cat(*announced_total, " bytes") : std::string("more bytes"),
                       " but the tree API lists ", file.size));
    const bool ok_status = r.status == 200 || r.status == 206;
    if (r.error == TransferError::None && ok_status) {
      if (out.size() < file.size)
        fail_content(cat("the server's complete answer has ", out.size(), " bytes but the tree API lists ", file.size));
      break;
    }
    if (r.error == TransferError::Aborted && !bad_range) client.fail_redacted(cat(what, ": cancelled"));
    if (r.error == TransferError::None && r.status == 416) {
      out.truncate();  // our offset is past the server's end: start over
    } else if (!bad_range && !client.retryable(f)) {
      client.fail_response(what, f, failures + 1);
    }
    if (bad_range) out.truncate();
    // A dropped connection that delivered bytes is progress, not a failure streak: only attempts
    // that got nothing count towards the limit (the file's size bounds the rest).
    if (out.size() > at_start) failures = 0;
    if (++failures >= client.options().retry.max_attempts) client.fail_response(what, f, failures);
    client.backoff(what, f, failures);
  }
  out.sync_and_close();
  const uint64_t got = fs::file_size(partial);
  if (got != file.size) fail_content(cat("the download has ", got, " bytes but the tree API lists ", file.size));
  if (auto why = content_mismatch(file, partial)) fail_content(*why);
  fs::rename(partial, dest);
  sync_directory(dest.parent_path());
}

void download_files(const HubOptions& options, const std::string& repo, const std::string& revision,
                    const std::vector<RepoFile>& files, const fs::path& dest_dir, const DownloadOptions& dopt) {
  if (dopt.max_parallel < 1) fail("--parallel must be at least 1 (got ", dopt.max_parallel, ")");
  uint64_t total = 0;
  for (const auto& f : files) {
    check_repo_path(f.path, "download");
    total += f.size;
  }
  std::atomic<bool> cancel{false};
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::exception_ptr first_error;
  uint64_t done = 0;
  std::optional<ProgressBar> bar;
  if (dopt.progress) bar.emplace(cat("download ", repo), total, "MB/s", 1e-6);
  auto on_bytes = [&](uint64_t n) {
    std::lock_guard<std::mutex> lock(mu);
    done += n;
    if (bar) bar->update(done);
  };
  auto worker = [&] {
    try {
      HubClient client(options, &cancel);
      for (size_t i = next++; i < files.size() && !cancel; i = next++)
        download_file(client, repo, revision, files[i], dest_dir / files[i].path, on_bytes);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!first_error) first_error = std::current_exception();
      cancel = true;
    }
  };
  const size_t n_threads = std::min<size_t>(static_cast<size_t>(dopt.max_parallel), files.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < n_threads; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
  if (bar) bar->finish(cat(files.size(), " files"));
}

}  // namespace onebit::hub
