#pragma once
// Downloading dataset files through {endpoint}/datasets/{repo}/resolve/{revision}/{path}.
// Bytes go to "<dest>.incomplete"; after a dropped connection or a timeout the next attempt resumes
// with "Range: bytes=N-"; the whole file is checked against the tree API's size and sha256 (or git
// blob id for a non-LFS file) and only then renamed to <dest>. A file whose content turns out wrong
// is an error: its .incomplete is removed, so the next run starts it afresh.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "onebit/hub/client.h"
#include "onebit/hub/tree.h"

namespace onebit::hub {

// Called with each chunk's byte count as it lands on disk (from the downloading thread).
using BytesCallback = std::function<void(uint64_t bytes)>;

// Downloads one file to `dest` (its directory is created). A `dest` that already exists with the
// right size and hash is kept without any request.
void download_file(HubClient& client, const std::string& repo, const std::string& revision, const RepoFile& file,
                   const std::filesystem::path& dest, const BytesCallback& on_bytes = {});

struct DownloadOptions {
  int max_parallel = 4;  // files downloaded at once, each on its own connection
  bool progress = true;  // a progress bar on stderr (core/progress.h)
};

// Downloads `files` under `dest_dir` (dest_dir / file.path), at most max_parallel at a time. The
// first failure cancels the other transfers and is rethrown once all threads have stopped.
void download_files(const HubOptions& options, const std::string& repo, const std::string& revision,
                    const std::vector<RepoFile>& files, const std::filesystem::path& dest_dir,
                    const DownloadOptions& download_options = {});

}  // namespace onebit::hub
