// PLAIN and BYTE_STREAM_SPLIT values.
#include "onebit/core/error.h"
#include "onebit/formats/parquet/level_decoder.h"
#include "onebit/formats/parquet/value_decoder.h"

#include <cstring>

namespace onebit::parquet {

size_t fixed_width(const ValueType& t) {
  switch (t.type) {
    case PhysicalType::Boolean: return 1;
    case PhysicalType::Int32:
    case PhysicalType::Float: return 4;
    case PhysicalType::Int64:
    case PhysicalType::Double: return 8;
    case PhysicalType::Int96: return 12;
    case PhysicalType::FixedLenByteArray: return static_cast<size_t>(t.type_length);
    case PhysicalType::ByteArray: return 0;
  }
  return 0;
}

void decode_plain(const ValueType& t, const uint8_t* data, size_t size, size_t n, std::vector<std::string_view>& out,
                  std::string& scratch, const std::string& what) {
  out.clear();
  // A page header's value count is untrusted: check it against the bytes before reserving, so a
  // lying count is an error, not a multi-GiB allocation (found by parquet_fuzz).
  const size_t w = fixed_width(t);
  if (t.type == PhysicalType::Boolean) {
    if (n / 8 > size) fail(what, ": PLAIN booleans: ", n, " values need more than the page's ", size, " bytes");
  } else if (t.type == PhysicalType::ByteArray) {
    if (n > size / 4) fail(what, ": PLAIN byte arrays: ", n, " values need more than the page's ", size, " bytes");
  } else if (w == 0) {
    fail(what, ": PLAIN ", type_name(t.type), " of length 0 is not a value type");
  } else if (n > size / w) {
    fail(what, ": PLAIN ", type_name(t.type), ": ", n, " values need more than the page's ", size, " bytes");
  }
  out.reserve(n);
  const char* base = reinterpret_cast<const char*>(data);
  if (t.type == PhysicalType::Boolean) {
    // One bit per value, LSB first.
    if (n > size * 8) fail(what, ": PLAIN booleans: ", n, " values need more than the page's ", size, " bytes");
    scratch.resize(n);
    for (size_t i = 0; i < n; ++i) scratch[i] = static_cast<char>((data[i >> 3] >> (i & 7)) & 1);
    for (size_t i = 0; i < n; ++i) out.emplace_back(scratch.data() + i, 1);
    return;
  }
  if (t.type == PhysicalType::ByteArray) {
    size_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
      if (size - pos < 4) fail(what, ": PLAIN byte array ", i, " of ", n, ": length is past the end of the page");
      uint32_t len;
      std::memcpy(&len, data + pos, 4);
      pos += 4;
      if (len > size - pos)
        fail(what, ": PLAIN byte array ", i, " of ", n, " claims ", len, " bytes, ", size - pos, " are left in the page");
      out.emplace_back(base + pos, len);
      pos += len;
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) out.emplace_back(base + i * w, w);
}

namespace {

void decode_byte_stream_split(const ValueType& t, const uint8_t* data, size_t size, size_t n,
                              std::vector<std::string_view>& out, std::string& scratch, const std::string& what) {
  size_t w = fixed_width(t);
  if (t.type == PhysicalType::Boolean || t.type == PhysicalType::ByteArray || t.type == PhysicalType::Int96 || w == 0)
    fail(what, ": BYTE_STREAM_SPLIT is not defined for ", type_name(t.type));
  if (n > size / w) fail(what, ": BYTE_STREAM_SPLIT: ", n, " values need more than the page's ", size, " bytes");
  // Byte b of value i is at b * n + i: one stream per byte position.
  scratch.resize(n * w);
  for (size_t b = 0; b < w; ++b)
    for (size_t i = 0; i < n; ++i) scratch[i * w + b] = static_cast<char>(data[b * n + i]);
  out.clear();
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.emplace_back(scratch.data() + i * w, w);
}

void decode_dictionary_indices(const uint8_t* data, size_t size, size_t n, const std::vector<std::string_view>& dict,
                               std::vector<std::string_view>& out, const std::string& what);

}  // namespace

void decode_values(Encoding encoding, const ValueType& t, const uint8_t* data, size_t size, size_t n,
                   const std::vector<std::string_view>* dictionary, std::vector<std::string_view>& out,
                   std::string& scratch, const std::string& what) {
  // A page whose values are all null may carry no value bytes at all, whatever its encoding.
  if (n == 0) {
    out.clear();
    return;
  }
  switch (encoding) {
    case Encoding::Plain:
      decode_plain(t, data, size, n, out, scratch, what);
      return;
    case Encoding::PlainDictionary:
    case Encoding::RleDictionary:
      if (!dictionary) fail(what, ": dictionary-encoded page but the column chunk has no dictionary page");
      decode_dictionary_indices(data, size, n, *dictionary, out, what);
      return;
    case Encoding::ByteStreamSplit:
      decode_byte_stream_split(t, data, size, n, out, scratch, what);
      return;
    case Encoding::Rle: {
      if (t.type != PhysicalType::Boolean) fail(what, ": RLE values are only defined for BOOLEAN");
      // RLE booleans: a 4-byte length, then the hybrid with bit width 1.
      if (size < 4) fail(what, ": RLE booleans: length prefix is truncated");
      uint32_t len;
      std::memcpy(&len, data, 4);
      if (len > size - 4) fail(what, ": RLE booleans claim ", len, " bytes, the page has ", size - 4);
      std::vector<uint32_t> bits(n);
      RleBitPackedDecoder dec(data + 4, len, 1, what);
      dec.decode(bits.data(), n);
      scratch.resize(n);
      for (size_t i = 0; i < n; ++i) scratch[i] = static_cast<char>(bits[i]);
      out.clear();
      out.reserve(n);
      for (size_t i = 0; i < n; ++i) out.emplace_back(scratch.data() + i, 1);
      return;
    }
    case Encoding::DeltaBinaryPacked: {
      if (t.type != PhysicalType::Int32 && t.type != PhysicalType::Int64)
        fail(what, ": DELTA_BINARY_PACKED is only defined for INT32 and INT64, the column is ", type_name(t.type));
      std::vector<int64_t> v;
      decode_delta_binary_packed(data, size, n, v, what);
      size_t w = fixed_width(t);
      scratch.resize(n * w);
      for (size_t i = 0; i < n; ++i) {
        if (w == 4) {
          int32_t x = static_cast<int32_t>(static_cast<uint32_t>(v[i]));
          std::memcpy(scratch.data() + i * 4, &x, 4);
        } else {
          std::memcpy(scratch.data() + i * 8, &v[i], 8);
        }
      }
      out.clear();
      out.reserve(n);
      for (size_t i = 0; i < n; ++i) out.emplace_back(scratch.data() + i * w, w);
      return;
    }
    case Encoding::DeltaLengthByteArray:
      if (t.type != PhysicalType::ByteArray) fail(what, ": DELTA_LENGTH_BYTE_ARRAY on a ", type_name(t.type), " column");
      decode_delta_length_byte_array(data, size, n, out, what);
      return;
    case Encoding::DeltaByteArray:
      if (t.type != PhysicalType::ByteArray && t.type != PhysicalType::FixedLenByteArray)
        fail(what, ": DELTA_BYTE_ARRAY on a ", type_name(t.type), " column");
      decode_delta_byte_array(data, size, n, out, scratch, what);
      return;
    case Encoding::BitPacked:
      break;
  }
  fail(what, ": value encoding ", encoding_name(encoding), " is not supported");
}

namespace {

void decode_dictionary_indices(const uint8_t* data, size_t size, size_t n, const std::vector<std::string_view>& dict,
                               std::vector<std::string_view>& out, const std::string& what) {
  out.clear();
  if (n == 0) return;
  if (size < 1) fail(what, ": dictionary indices: bit width byte is missing");
  int bw = data[0];
  if (bw > 32) fail(what, ": dictionary index bit width ", bw, " is over 32");
  std::vector<uint32_t> idx(n);
  RleBitPackedDecoder dec(data + 1, size - 1, bw, what);
  dec.decode(idx.data(), n);
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (idx[i] >= dict.size()) fail(what, ": dictionary index ", idx[i], " is past the dictionary's ", dict.size(), " entries");
    out.push_back(dict[idx[i]]);
  }
}

}  // namespace

}  // namespace onebit::parquet
