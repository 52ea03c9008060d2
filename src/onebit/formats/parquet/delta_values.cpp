// DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY (Parquet encodings spec).
#include <algorithm>
#include <cstring>

#include "onebit/core/error.h"
#include "onebit/formats/parquet/bit_reader.h"
#include "onebit/formats/parquet/value_decoder.h"

namespace onebit::parquet {

namespace {
uint64_t uleb(const uint8_t* data, size_t size, size_t& pos, const std::string& what) {
  uint64_t v;
  if (!read_uleb(data, size, pos, v)) fail(what, ": DELTA_BINARY_PACKED header or block is truncated");
  return v;
}
int64_t zigzag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }
}  // namespace

size_t decode_delta_binary_packed(const uint8_t* data, size_t size, size_t n, std::vector<int64_t>& out,
                                  const std::string& what) {
  size_t pos = 0;
  uint64_t block_size = uleb(data, size, pos, what);
  uint64_t miniblocks = uleb(data, size, pos, what);
  uint64_t total = uleb(data, size, pos, what);
  int64_t first = zigzag(uleb(data, size, pos, what));
  if (block_size == 0 || block_size % 128 != 0 || block_size > (1u << 20) || miniblocks == 0 ||
      block_size % miniblocks != 0 || (block_size / miniblocks) % 32 != 0)
    fail(what, ": DELTA_BINARY_PACKED header has block size ", block_size, " and ", miniblocks,
         " miniblocks (block size must be a multiple of 128, values per miniblock a multiple of 32)");
  if (total != n) fail(what, ": DELTA_BINARY_PACKED holds ", total, " values, the page needs ", n);
  out.clear();
  out.reserve(n);
  if (n == 0) return pos;
  // Deltas are added modulo 2^64, as the writer computed them.
  uint64_t value = static_cast<uint64_t>(first);
  out.push_back(first);
  const uint64_t per_mini = block_size / miniblocks;
  while (out.size() < n) {
    uint64_t min_delta = static_cast<uint64_t>(zigzag(uleb(data, size, pos, what)));
    if (size - pos < miniblocks) fail(what, ": DELTA_BINARY_PACKED miniblock bit widths are truncated");
    const uint8_t* widths = data + pos;
    pos += miniblocks;
    for (uint64_t m = 0; m < miniblocks && out.size() < n; ++m) {
      int bw = widths[m];
      if (bw > 64) fail(what, ": DELTA_BINARY_PACKED bit width ", bw, " is over 64");
      uint64_t bytes = per_mini * static_cast<uint64_t>(bw) / 8;
      if (bytes > size - pos) fail(what, ": DELTA_BINARY_PACKED miniblock is truncated");
      const uint8_t* p = data + pos;
      uint64_t take = std::min<uint64_t>(per_mini, n - out.size());
      for (uint64_t i = 0; i < take; ++i) {
        value += min_delta + extract_bits(p, static_cast<size_t>(bytes), i * bw, bw);
        out.push_back(static_cast<int64_t>(value));
      }
      pos += static_cast<size_t>(bytes);
    }
  }
  return pos;
}

void decode_delta_length_byte_array(const uint8_t* data, size_t size, size_t n, std::vector<std::string_view>& out,
                                    const std::string& what) {
  std::vector<int64_t> lengths;
  size_t pos = decode_delta_binary_packed(data, size, n, lengths, what);
  out.clear();
  out.reserve(n);
  const char* base = reinterpret_cast<const char*>(data);
  for (size_t i = 0; i < n; ++i) {
    int64_t len = lengths[i];
    if (len < 0 || static_cast<uint64_t>(len) > size - pos)
      fail(what, ": DELTA_LENGTH_BYTE_ARRAY value ", i, " claims ", len, " bytes, ", size - pos, " are left in the page");
    out.emplace_back(base + pos, static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
  }
}

void decode_delta_byte_array(const uint8_t* data, size_t size, size_t n, std::vector<std::string_view>& out,
                             std::string& scratch, const std::string& what) {
  std::vector<int64_t> prefixes;
  size_t pos = decode_delta_binary_packed(data, size, n, prefixes, what);
  std::vector<std::string_view> suffixes;
  decode_delta_length_byte_array(data + pos, size - pos, n, suffixes, what);
  // Each value is the previous value's first prefix[i] bytes followed by suffix[i]. Sizes first, so
  // scratch is allocated once and the views made afterwards stay valid.
  std::vector<size_t> lens(n);
  uint64_t total = 0, prev = 0;
  for (size_t i = 0; i < n; ++i) {
    int64_t pre = prefixes[i];
    if (pre < 0 || static_cast<uint64_t>(pre) > prev)
      fail(what, ": DELTA_BYTE_ARRAY value ", i, " has prefix length ", pre, ", the previous value is ", prev, " bytes");
    lens[i] = static_cast<size_t>(pre) + suffixes[i].size();
    total += lens[i];
    if (total > (uint64_t{1} << 31)) fail(what, ": DELTA_BYTE_ARRAY values add up to more than 2 GiB in one page");
    prev = lens[i];
  }
  scratch.resize(static_cast<size_t>(total));
  size_t off = 0, prev_off = 0;
  for (size_t i = 0; i < n; ++i) {
    size_t pre = static_cast<size_t>(prefixes[i]);
    if (pre) std::memmove(scratch.data() + off, scratch.data() + prev_off, pre);
    if (!suffixes[i].empty()) std::memcpy(scratch.data() + off + pre, suffixes[i].data(), suffixes[i].size());
    prev_off = off;
    off += lens[i];
  }
  out.clear();
  out.reserve(n);
  off = 0;
  for (size_t i = 0; i < n; ++i) {
    out.emplace_back(scratch.data() + off, lens[i]);
    off += lens[i];
  }
}

}  // namespace onebit::parquet
