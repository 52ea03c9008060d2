#pragma once
// The RLE / bit-packed hybrid (Parquet "RLE" encoding): definition levels, dictionary indices and
// RLE booleans. Runs are decoded lazily; asking for more values than the buffer holds is an error.
#include <cstddef>
#include <cstdint>
#include <string>

namespace onebit::parquet {

class RleBitPackedDecoder {
 public:
  // bit_width in [0, 32]. `what` names the page in errors.
  RleBitPackedDecoder(const uint8_t* data, size_t size, int bit_width, const std::string& what);
  // Decodes the next n values into out.
  void decode(uint32_t* out, size_t n);

 private:
  void next_run();
  const uint8_t* data_;
  size_t size_, pos_ = 0;
  int bit_width_;
  const std::string& what_;
  // Current run: an RLE run repeats rle_value_; a bit-packed run reads packed_ from bit packed_bit_.
  bool packed_ = false;
  uint64_t run_left_ = 0;
  uint32_t rle_value_ = 0;
  const uint8_t* packed_data_ = nullptr;
  size_t packed_size_ = 0;
  uint64_t packed_bit_ = 0;
};

}  // namespace onebit::parquet
