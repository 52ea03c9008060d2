#pragma once
// Page decompression. Each codec must produce exactly the size the page header promises; anything
// else (a corrupt stream, a lying size) is an error naming `what`.
#include <cstddef>
#include <cstdint>
#include <string>

#include "onebit/formats/parquet/metadata.h"

namespace onebit::parquet {

// Decompresses src[0, src_size) into dst, which has room for exactly dst_size bytes.
void decompress(Codec codec, const uint8_t* src, size_t src_size, uint8_t* dst, size_t dst_size,
                const std::string& what);

}  // namespace onebit::parquet
