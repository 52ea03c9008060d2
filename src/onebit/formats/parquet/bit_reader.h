#pragma once
// Little-endian bit extraction and unsigned varints over a bounded buffer: the primitives under the
// level decoder and the delta decoders. Nothing here reads past `size`.
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace onebit::parquet {

// Bits [bitpos, bitpos + width) of p (LSB-first, as Parquet packs them), width <= 64. The caller has
// checked that bitpos + width <= size * 8.
inline uint64_t extract_bits(const uint8_t* p, size_t size, uint64_t bitpos, int width) {
  if (width == 0) return 0;
  size_t byte = static_cast<size_t>(bitpos >> 3);
  int shift = static_cast<int>(bitpos & 7);
  uint64_t mask = width == 64 ? ~uint64_t{0} : (uint64_t{1} << width) - 1;
  if (shift + width <= 64 && byte + 8 <= size) {
    uint64_t w;
    std::memcpy(&w, p + byte, 8);
    return (w >> shift) & mask;
  }
  unsigned __int128 w = 0;
  size_t n = size - byte < 9 ? size - byte : 9;
  for (size_t k = 0; k < n; ++k) w |= static_cast<unsigned __int128>(p[byte + k]) << (8 * k);
  return static_cast<uint64_t>(w >> shift) & mask;
}

// Reads an unsigned LEB128 varint at pos; returns false if it is truncated or longer than 10 bytes.
inline bool read_uleb(const uint8_t* p, size_t size, size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos >= size) return false;
    uint8_t b = p[pos++];
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

}  // namespace onebit::parquet
