#include "onebit/formats/parquet/column_reader.h"

#include <algorithm>
#include <cstring>

#include "onebit/core/error.h"
#include "onebit/formats/parquet/codecs.h"
#include "onebit/formats/parquet/level_decoder.h"
#include "onebit/formats/parquet/value_decoder.h"

namespace onebit::parquet {

namespace {
// Writers cut pages at about 1 MB (pyarrow: 1 MiB, at most 20000 rows by default); a page that claims
// more values than this is refused, so a lying header (RLE can encode huge runs in a few bytes) cannot
// make one page's values take more than about 1 GiB of views.
constexpr size_t kMaxPageValues = size_t{1} << 26;

void check_page_values(size_t n, const std::string& what) {
  if (n > kMaxPageValues) fail(what, ": a data page claims ", n, " values (at most ", kMaxPageValues, " are accepted)");
}
}  // namespace

namespace {

// The page's bytes after decompression: for an uncompressed page the file's own bytes (no copy),
// else a buffer owned by `out` that lives as long as the values that view it.
const uint8_t* page_bytes(Codec codec, const uint8_t* src, size_t csize, size_t usize, ColumnData& out,
                          const std::string& what) {
  if (codec == Codec::Uncompressed) {
    if (csize != usize) fail(what, ": uncompressed page is ", csize, " bytes, the header says ", usize);
    return src;
  }
  uint8_t* dst = out.page_buffer(usize);
  decompress(codec, src, csize, dst, usize, what);
  return dst;
}

}  // namespace

void ColumnChunkReader::read(const uint8_t* file, size_t data_end, const ColumnChunk& chunk, const ColumnInfo& info,
                             int64_t num_rows, ColumnData& out, const std::string& what) {
  out.clear();
  dictionary_.clear();
  bool have_dictionary = false;
  const ValueType vt{info.type, info.type_length};
  // An empty row group's chunks may have no pages (and offset 0).
  if (num_rows == 0) return;

  // The chunk starts at its dictionary page when there is one. Some writers store 0 for "no
  // dictionary", so only an offset before the first data page counts.
  int64_t start = chunk.data_page_offset;
  if (chunk.dictionary_page_offset && *chunk.dictionary_page_offset > 0 && *chunk.dictionary_page_offset < start)
    start = *chunk.dictionary_page_offset;
  if (start < 4 || static_cast<uint64_t>(start) > data_end || static_cast<uint64_t>(chunk.total_compressed_size) > data_end - start)
    fail(what, ": column chunk at offset ", start, " with ", chunk.total_compressed_size,
         " bytes lies outside the file's data (", data_end, " bytes before the footer)");
  size_t pos = static_cast<size_t>(start);
  const size_t end = pos + static_cast<size_t>(chunk.total_compressed_size);
  // The footer's row count is a hint only (a lying one costs at most this much address space).
  out.reserve_rows(static_cast<size_t>(std::min<int64_t>(num_rows, int64_t{1} << 24)));

  int64_t rows_done = 0;
  while (rows_done < num_rows) {
    if (pos >= end) fail(what, ": column chunk ends after ", rows_done, " of ", num_rows, " rows");
    size_t header_size = 0;
    PageHeader h = parse_page_header(file + pos, end - pos, what, header_size);
    pos += header_size;
    const size_t csize = static_cast<size_t>(h.compressed_page_size), usize = static_cast<size_t>(h.uncompressed_page_size);
    if (csize > end - pos)
      fail(what, ": page at offset ", pos - header_size, " claims ", csize, " bytes, the chunk has ", end - pos, " left");
    const uint8_t* src = file + pos;
    pos += csize;

    if (h.type == PageType::IndexPage) continue;
    if (h.type == PageType::DictionaryPage) {
      if (!h.dictionary_page) fail(what, ": dictionary page without a DictionaryPageHeader");
      if (have_dictionary) fail(what, ": second dictionary page in one column chunk");
      Encoding e = h.dictionary_page->encoding;
      if (e != Encoding::Plain && e != Encoding::PlainDictionary)
        fail(what, ": dictionary page encoding ", encoding_name(e), " (must be PLAIN)");
      const uint8_t* dict = page_bytes(chunk.codec, src, csize, usize, out, what);
      decode_plain(vt, dict, usize, static_cast<size_t>(h.dictionary_page->num_values), dictionary_, out.scratch(),
                   what);
      have_dictionary = true;
      continue;
    }

    // A data page: levels, then values.
    size_t num_values;
    Encoding encoding;
    const uint8_t* levels = nullptr;  // definition levels (RLE hybrid, no length prefix)
    size_t levels_size = 0;
    const uint8_t* values = nullptr;
    size_t values_size = 0;
    if (h.type == PageType::DataPage) {
      if (!h.data_page) fail(what, ": data page without a DataPageHeader");
      num_values = static_cast<size_t>(h.data_page->num_values);
      encoding = h.data_page->encoding;
      if (static_cast<int64_t>(num_values) > num_rows - rows_done)
        fail(what, ": data page holds ", num_values, " values, only ", num_rows - rows_done, " rows are left in the row group");
      check_page_values(num_values, what);
      const uint8_t* p = page_bytes(chunk.codec, src, csize, usize, out, what);
      size_t left = usize;
      if (info.nullable) {
        if (h.data_page->definition_level_encoding != Encoding::Rle)
          fail(what, ": definition levels encoded as ", encoding_name(h.data_page->definition_level_encoding),
               " (only RLE is supported)");
        if (left < 4) fail(what, ": definition levels length is truncated");
        uint32_t len;
        std::memcpy(&len, p, 4);
        if (len > left - 4) fail(what, ": definition levels claim ", len, " bytes, the page has ", left - 4);
        levels = p + 4;
        levels_size = len;
        p += 4 + len;
        left -= 4 + len;
      }
      values = p;
      values_size = left;
    } else {
      if (!h.data_page_v2) fail(what, ": data page v2 without a DataPageHeaderV2");
      const DataPageHeaderV2& d = *h.data_page_v2;
      num_values = static_cast<size_t>(d.num_values);
      encoding = d.encoding;
      if (static_cast<int64_t>(num_values) > num_rows - rows_done)
        fail(what, ": data page holds ", num_values, " values, only ", num_rows - rows_done, " rows are left in the row group");
      check_page_values(num_values, what);
      // v2: repetition and definition levels come first and are never compressed.
      size_t rep = static_cast<size_t>(d.repetition_levels_byte_length), def = static_cast<size_t>(d.definition_levels_byte_length);
      if (rep + def > csize || rep + def > usize)
        fail(what, ": data page v2 levels (", rep + def, " bytes) are larger than the page");
      if (rep != 0) fail(what, ": repetition levels in a flat column");
      if (!info.nullable && d.num_nulls != 0) fail(what, ": ", d.num_nulls, " nulls in a required column");
      levels = src;
      levels_size = def;
      size_t vsize = usize - rep - def;
      if (d.is_compressed && chunk.codec != Codec::Uncompressed) {
        uint8_t* dst = out.page_buffer(vsize);
        decompress(chunk.codec, src + rep + def, csize - rep - def, dst, vsize, what);
        values = dst;
      } else {
        if (csize != usize) fail(what, ": uncompressed data page v2 is ", csize, " bytes, the header says ", usize);
        values = src + rep + def;
      }
      values_size = vsize;
    }

    // Definition levels: 1 = a value, 0 = null (flat optional column: max level 1).
    size_t non_null = num_values;
    if (info.nullable) {
      def_levels_.resize(num_values);
      RleBitPackedDecoder dec(levels, levels_size, 1, what);
      dec.decode(def_levels_.data(), num_values);
      non_null = 0;
      for (size_t i = 0; i < num_values; ++i) {
        if (def_levels_[i] > 1) fail(what, ": definition level ", def_levels_[i], " is over the column's maximum 1");
        non_null += def_levels_[i];
      }
    }
    if (encoding == Encoding::PlainDictionary || encoding == Encoding::RleDictionary) {
      if (!have_dictionary) fail(what, ": dictionary-encoded page before any dictionary page");
      decode_values(encoding, vt, values, values_size, non_null, &dictionary_, values_, out.scratch(), what);
    } else {
      decode_values(encoding, vt, values, values_size, non_null, nullptr, values_, out.scratch(), what);
    }
    if (info.nullable) {
      size_t k = 0;
      for (size_t i = 0; i < num_values; ++i) {
        if (def_levels_[i]) out.append(values_[k++]);
        else out.append_null();
      }
    } else {
      for (size_t i = 0; i < num_values; ++i) out.append(values_[i]);
    }
    rows_done += static_cast<int64_t>(num_values);
  }
}

}  // namespace onebit::parquet
