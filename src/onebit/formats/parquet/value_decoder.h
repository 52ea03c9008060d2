#pragma once
// Value decoders: a page's (or dictionary's) encoded values → one string_view per value. A view
// points into the page buffer where the values lie there as they are (PLAIN byte arrays and
// fixed-width values), else into `scratch` (booleans, delta-decoded integers and byte arrays).
// Fixed-width values are viewed as their little-endian bytes (BOOLEAN as one byte 0/1).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "onebit/formats/parquet/metadata.h"

namespace onebit::parquet {

struct ValueType {
  PhysicalType type = PhysicalType::ByteArray;
  int32_t type_length = 0;  // FIXED_LEN_BYTE_ARRAY only
};

// Bytes per value for fixed-width types, 0 for BYTE_ARRAY.
size_t fixed_width(const ValueType& t);

// Decodes exactly n values. `dictionary` is used by PLAIN_DICTIONARY / RLE_DICTIONARY pages.
// out is cleared first; scratch may be reallocated (views into it are made after it is final).
void decode_values(Encoding encoding, const ValueType& t, const uint8_t* data, size_t size, size_t n,
                   const std::vector<std::string_view>* dictionary, std::vector<std::string_view>& out,
                   std::string& scratch, const std::string& what);

// The pieces, exposed for tests.
void decode_plain(const ValueType& t, const uint8_t* data, size_t size, size_t n, std::vector<std::string_view>& out,
                  std::string& scratch, const std::string& what);
// DELTA_BINARY_PACKED: exactly n values (the header's count must be n); returns the bytes used.
size_t decode_delta_binary_packed(const uint8_t* data, size_t size, size_t n, std::vector<int64_t>& out,
                                  const std::string& what);
void decode_delta_length_byte_array(const uint8_t* data, size_t size, size_t n, std::vector<std::string_view>& out,
                                    const std::string& what);
void decode_delta_byte_array(const uint8_t* data, size_t size, size_t n, std::vector<std::string_view>& out,
                             std::string& scratch, const std::string& what);

}  // namespace onebit::parquet
