#include "onebit/formats/parquet/codecs.h"

#include <brotli/decode.h>
#include <lz4.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "onebit/core/error.h"

namespace onebit::parquet {

namespace {

void inflate_gzip(const uint8_t* src, size_t src_size, uint8_t* dst, size_t dst_size, const std::string& what) {
  z_stream zs{};
  // 15 + 32: a gzip or zlib header, detected automatically (writers differ on which they emit).
  if (inflateInit2(&zs, 15 + 32) != Z_OK) fail(what, ": GZIP: inflateInit failed");
  size_t in_done = 0, out_done = 0;
  // zlib counts in uInt, so large pages go in pieces; a call that makes no progress means the
  // input ended early or the output is full before the stream's end.
  while (true) {
    size_t in_chunk = std::min<size_t>(src_size - in_done, UINT_MAX);
    size_t out_chunk = std::min<size_t>(dst_size - out_done, UINT_MAX);
    zs.next_in = const_cast<Bytef*>(src + in_done);
    zs.avail_in = static_cast<uInt>(in_chunk);
    zs.next_out = dst + out_done;
    zs.avail_out = static_cast<uInt>(out_chunk);
    int rc = inflate(&zs, Z_NO_FLUSH);
    size_t used = in_chunk - zs.avail_in, made = out_chunk - zs.avail_out;
    in_done += used;
    out_done += made;
    if (rc == Z_STREAM_END) break;
    if ((rc != Z_OK && rc != Z_BUF_ERROR) || (used == 0 && made == 0)) {
      inflateEnd(&zs);
      if (out_done == dst_size) fail(what, ": GZIP stream holds more than the page header's ", dst_size, " bytes");
      fail(what, ": corrupt or truncated GZIP stream");
    }
  }
  inflateEnd(&zs);
  if (out_done != dst_size) fail(what, ": GZIP stream gave ", out_done, " bytes, the page header says ", dst_size);
}

}  // namespace

void decompress(Codec codec, const uint8_t* src, size_t src_size, uint8_t* dst, size_t dst_size, const std::string& what) {
  // An empty page (e.g. the values of an all-null v2 page) has nothing to decode; its codec framing
  // (a gzip header of an empty stream) is not looked at.
  if (dst_size == 0 && codec != Codec::Uncompressed) return;
  switch (codec) {
    case Codec::Uncompressed:
      if (src_size != dst_size) fail(what, ": uncompressed page is ", src_size, " bytes, the header says ", dst_size);
      if (dst_size) std::memcpy(dst, src, dst_size);
      return;
    case Codec::Snappy: {
      size_t n = 0;
      if (snappy_uncompressed_length(reinterpret_cast<const char*>(src), src_size, &n) != SNAPPY_OK)
        fail(what, ": corrupt SNAPPY stream");
      if (n != dst_size) fail(what, ": SNAPPY stream holds ", n, " bytes, the page header says ", dst_size);
      if (snappy_uncompress(reinterpret_cast<const char*>(src), src_size, reinterpret_cast<char*>(dst), &n) != SNAPPY_OK ||
          n != dst_size)
        fail(what, ": corrupt SNAPPY stream");
      return;
    }
    case Codec::Zstd: {
      size_t n = ZSTD_decompress(dst, dst_size, src, src_size);
      if (ZSTD_isError(n)) fail(what, ": corrupt ZSTD stream (", ZSTD_getErrorName(n), ")");
      if (n != dst_size) fail(what, ": ZSTD stream gave ", n, " bytes, the page header says ", dst_size);
      return;
    }
    case Codec::Gzip:
      inflate_gzip(src, src_size, dst, dst_size, what);
      return;
    case Codec::Lz4Raw: {
      if (src_size > INT_MAX || dst_size > INT_MAX) fail(what, ": LZ4_RAW page over 2 GB");
      int n = LZ4_decompress_safe(reinterpret_cast<const char*>(src), reinterpret_cast<char*>(dst),
                                  static_cast<int>(src_size), static_cast<int>(dst_size));
      if (n < 0) fail(what, ": corrupt LZ4_RAW stream");
      if (static_cast<size_t>(n) != dst_size) fail(what, ": LZ4_RAW stream gave ", n, " bytes, the page header says ", dst_size);
      return;
    }
    case Codec::Brotli: {
      size_t n = dst_size;
      if (BrotliDecoderDecompress(src_size, src, &n, dst) != BROTLI_DECODER_RESULT_SUCCESS)
        fail(what, ": corrupt BROTLI stream (or larger than the page header's ", dst_size, " bytes)");
      if (n != dst_size) fail(what, ": BROTLI stream gave ", n, " bytes, the page header says ", dst_size);
      return;
    }
    case Codec::Lzo:
    case Codec::Lz4:
      break;
  }
  fail(what, ": compression codec ", codec_name(codec),
       " is not supported (LZ4 here means the deprecated Hadoop framing; writers use LZ4_RAW)");
}

}  // namespace onebit::parquet
