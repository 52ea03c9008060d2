#include "onebit/formats/parquet/level_decoder.h"

#include <algorithm>

#include "onebit/core/error.h"
#include "onebit/formats/parquet/bit_reader.h"

namespace onebit::parquet {

RleBitPackedDecoder::RleBitPackedDecoder(const uint8_t* data, size_t size, int bit_width, const std::string& what)
    : data_(data), size_(size), bit_width_(bit_width), what_(what) {
  if (bit_width < 0 || bit_width > 32) fail(what, ": RLE bit width ", bit_width, " is out of range [0, 32]");
}

void RleBitPackedDecoder::next_run() {
  uint64_t header;
  if (!read_uleb(data_, size_, pos_, header)) fail(what_, ": RLE/bit-packed data ends before all values were read");
  if (header & 1) {
    // (header >> 1) groups of 8 values, bit_width bytes per group. The last group may be cut short
    // by the writer, so only what is present is taken; reading past it is caught in decode().
    uint64_t groups = header >> 1;
    packed_ = true;
    run_left_ = groups * 8;
    if (groups > (uint64_t{1} << 40)) fail(what_, ": bit-packed run of ", groups, " groups is impossible");
    uint64_t bytes = groups * static_cast<uint64_t>(bit_width_);
    packed_size_ = static_cast<size_t>(std::min<uint64_t>(bytes, size_ - pos_));
    packed_data_ = data_ + pos_;
    packed_bit_ = 0;
    pos_ += packed_size_;
  } else {
    packed_ = false;
    run_left_ = header >> 1;
    size_t nbytes = static_cast<size_t>((bit_width_ + 7) / 8);
    if (size_ - pos_ < nbytes) fail(what_, ": RLE run value is truncated");
    uint32_t v = 0;
    for (size_t k = 0; k < nbytes; ++k) v |= static_cast<uint32_t>(data_[pos_ + k]) << (8 * k);
    pos_ += nbytes;
    rle_value_ = v;
  }
}

void RleBitPackedDecoder::decode(uint32_t* out, size_t n) {
  while (n > 0) {
    if (run_left_ == 0) {
      next_run();
      continue;
    }
    size_t take = static_cast<size_t>(std::min<uint64_t>(run_left_, n));
    if (packed_) {
      if (packed_bit_ + static_cast<uint64_t>(take) * bit_width_ > static_cast<uint64_t>(packed_size_) * 8)
        fail(what_, ": bit-packed run is truncated");
      for (size_t i = 0; i < take; ++i) {
        out[i] = static_cast<uint32_t>(extract_bits(packed_data_, packed_size_, packed_bit_, bit_width_));
        packed_bit_ += bit_width_;
      }
    } else {
      std::fill(out, out + take, rle_value_);
    }
    out += take;
    n -= take;
    run_left_ -= take;
  }
}

}  // namespace onebit::parquet
