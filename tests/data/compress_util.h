#pragma once
// Writes test inputs compressed with the real libraries (gzip via zlib's gz* API, zstd frames).
#include <zlib.h>
#include <zstd.h>

#include <string>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"

namespace onebit::data::testing {

inline void write_gzip(const fs::path& p, const std::string& data) {
  gzFile f = gzopen(p.c_str(), "wb");
  if (!f) fail(p.string(), ": gzopen failed");
  if (!data.empty()) gzwrite(f, data.data(), static_cast<unsigned>(data.size()));
  gzclose(f);
}

inline std::string zstd_compress(const std::string& data, int level = 3) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  if (ZSTD_isError(n)) fail("zstd: ", ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

inline void write_zstd(const fs::path& p, const std::string& data) { write_file_atomic(p, zstd_compress(data)); }

}  // namespace onebit::data::testing
