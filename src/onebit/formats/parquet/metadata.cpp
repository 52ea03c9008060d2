#include "onebit/formats/parquet/metadata.h"

#include "onebit/core/error.h"
#include "onebit/formats/parquet/thrift_compact.h"

namespace onebit::parquet {

const char* type_name(PhysicalType t) {
  switch (t) {
    case PhysicalType::Boolean: return "BOOLEAN";
    case PhysicalType::Int32: return "INT32";
    case PhysicalType::Int64: return "INT64";
    case PhysicalType::Int96: return "INT96";
    case PhysicalType::Float: return "FLOAT";
    case PhysicalType::Double: return "DOUBLE";
    case PhysicalType::ByteArray: return "BYTE_ARRAY";
    case PhysicalType::FixedLenByteArray: return "FIXED_LEN_BYTE_ARRAY";
  }
  return "?";
}

const char* encoding_name(Encoding e) {
  switch (e) {
    case Encoding::Plain: return "PLAIN";
    case Encoding::PlainDictionary: return "PLAIN_DICTIONARY";
    case Encoding::Rle: return "RLE";
    case Encoding::BitPacked: return "BIT_PACKED";
    case Encoding::DeltaBinaryPacked: return "DELTA_BINARY_PACKED";
    case Encoding::DeltaLengthByteArray: return "DELTA_LENGTH_BYTE_ARRAY";
    case Encoding::DeltaByteArray: return "DELTA_BYTE_ARRAY";
    case Encoding::RleDictionary: return "RLE_DICTIONARY";
    case Encoding::ByteStreamSplit: return "BYTE_STREAM_SPLIT";
  }
  return "?";
}

const char* codec_name(Codec c) {
  switch (c) {
    case Codec::Uncompressed: return "UNCOMPRESSED";
    case Codec::Snappy: return "SNAPPY";
    case Codec::Gzip: return "GZIP";
    case Codec::Lzo: return "LZO";
    case Codec::Brotli: return "BROTLI";
    case Codec::Lz4: return "LZ4";
    case Codec::Zstd: return "ZSTD";
    case Codec::Lz4Raw: return "LZ4_RAW";
  }
  return "?";
}

namespace {

// Enum fields are read as i32 and range-checked here, so an out-of-range value never becomes an
// enum the switches above do not know.
template <typename E>
E read_enum(ThriftReader& r, int32_t max, const char* field) {
  int32_t v = r.read_i32();
  if (v < 0 || v > max) r.error(cat(field, " has unknown value ", v));
  return static_cast<E>(v);
}

Encoding read_encoding(ThriftReader& r, const char* field) {
  int32_t v = r.read_i32();
  if (v < 0 || v > 9 || v == 1) r.error(cat(field, " has unknown encoding ", v));
  return static_cast<Encoding>(v);
}

void expect(ThriftReader& r, const ThriftField& f, ThriftType t) {
  if (f.type != t) r.error(cat("field ", f.id, " has wire type ", static_cast<int>(f.type), ", expected ", static_cast<int>(t)));
}

// Reads a list<struct> calling fn(r) for each element between begin_struct/end_struct.
template <typename Fn>
void read_struct_list(ThriftReader& r, const ThriftField& f, Fn fn) {
  expect(r, f, ThriftType::List);
  ThriftType et;
  uint32_t n = r.read_list_header(et);
  if (et != ThriftType::Struct) r.error(cat("field ", f.id, " should be a list of structs"));
  for (uint32_t i = 0; i < n; ++i) fn(r);
}

SchemaElement read_schema_element(ThriftReader& r) {
  SchemaElement s;
  bool has_name = false;
  r.begin_struct();
  for (ThriftField f = r.next_field(); f.type != ThriftType::Stop; f = r.next_field()) {
    switch (f.id) {
      case 1: expect(r, f, ThriftType::I32); s.type = read_enum<PhysicalType>(r, 7, "SchemaElement.type"); break;
      case 2: expect(r, f, ThriftType::I32); s.type_length = r.read_i32(); break;
      case 3: expect(r, f, ThriftType::I32); s.repetition = read_enum<Repetition>(r, 2, "SchemaElement.repetition_type"); break;
      case 4: expect(r, f, ThriftType::Binary); s.name = std::string(r.read_binary()); has_name = true; break;
      case 5: expect(r, f, ThriftType::I32); s.num_children = r.read_i32(); break;
      default: r.skip(f.type);
    }
  }
  r.end_struct();
  if (!has_name) r.error("SchemaElement without a name");
  if (s.num_children < 0) r.error("SchemaElement.num_children is negative");
  return s;
}

ColumnChunk read_column_metadata(ThriftReader& r) {
  ColumnChunk c;
  bool has_type = false, has_codec = false, has_offset = false;
  r.begin_struct();
  for (ThriftField f = r.next_field(); f.type != ThriftType::Stop; f = r.next_field()) {
    switch (f.id) {
      case 1: expect(r, f, ThriftType::I32); c.type = read_enum<PhysicalType>(r, 7, "ColumnMetaData.type"); has_type = true; break;
      case 3: {
        expect(r, f, ThriftType::List);
        ThriftType et;
        uint32_t n = r.read_list_header(et);
        if (et != ThriftType::Binary) r.error("ColumnMetaData.path_in_schema should be a list of strings");
        for (uint32_t i = 0; i < n; ++i) c.path.emplace_back(r.read_binary());
        break;
      }
      case 4: expect(r, f, ThriftType::I32); c.codec = read_enum<Codec>(r, 7, "ColumnMetaData.codec"); has_codec = true; break;
      case 5: expect(r, f, ThriftType::I64); c.num_values = r.read_i64(); break;
      case 6: expect(r, f, ThriftType::I64); c.total_uncompressed_size = r.read_i64(); break;
      case 7: expect(r, f, ThriftType::I64); c.total_compressed_size = r.read_i64(); break;
      case 9: expect(r, f, ThriftType::I64); c.data_page_offset = r.read_i64(); has_offset = true; break;
      case 11: expect(r, f, ThriftType::I64); c.dictionary_page_offset = r.read_i64(); break;
      default: r.skip(f.type);
    }
  }
  r.end_struct();
  if (!has_type || !has_codec || !has_offset) r.error("ColumnMetaData lacks type, codec or data_page_offset");
  if (c.num_values < 0 || c.total_compressed_size < 0 || c.data_page_offset < 0 ||
      (c.dictionary_page_offset && *c.dictionary_page_offset < 0))
    r.error("ColumnMetaData has a negative count, size or offset");
  return c;
}

ColumnChunk read_column_chunk(ThriftReader& r) {
  std::optional<ColumnChunk> c;
  r.begin_struct();
  for (ThriftField f = r.next_field(); f.type != ThriftType::Stop; f = r.next_field()) {
    if (f.id == 1 && f.type == ThriftType::Binary) {
      r.read_binary();
      r.error("ColumnChunk.file_path is set: columns in other files are not supported");
    } else if (f.id == 3) {
      expect(r, f, ThriftType::Struct);
      c = read_column_metadata(r);
    } else {
      r.skip(f.type);
    }
  }
  r.end_struct();
  if (!c) r.error("ColumnChunk without meta_data");
  return std::move(*c);
}

RowGroup read_row_group(ThriftReader& r) {
  RowGroup g;
  r.begin_struct();
  for (ThriftField f = r.next_field(); f.type != ThriftType::Stop; f = r.next_field()) {
    if (f.id == 1) {
      read_struct_list(r, f, [&](ThriftReader& rr) { g.columns.push_back(read_column_chunk(rr)); });
    } else if (f.id == 3) {
      expect(r, f, ThriftType::I64);
      g.num_rows = r.read_i64();
    } else {
      r.skip(f.type);
    }
  }
  r.end_struct();
  if (g.num_rows < 0) r.error("RowGroup.num_rows is negative");
  return g;
}

}  // namespace

FileMetaData parse_file_metadata(const uint8_t* data, size_t size, const std::string& what) {
  ThriftReader r(data, size, what + ": footer");
  FileMetaData m;
  bool has_schema = false;
  r.begin_struct();
  for (ThriftField f = r.next_field(); f.type != ThriftType::Stop; f = r.next_field()) {
    switch (f.id) {
      case 2:
        read_struct_list(r, f, [&](ThriftReader& rr) { m.schema.push_back(read_schema_element(rr)); });
        has_schema = true;
        break;
      case 3: expect(r, f, ThriftType::I64); m.num_rows = r.read_i64(); break;
      case 4: read_struct_list(r, f, [&](ThriftReader& rr) { m.row_groups.push_back(read_row_group(rr)); }); break;
      default: r.skip(f.type);
    }
  }
  r.end_struct();
  if (!has_schema || m.schema.empty()) r.error("FileMetaData without a schema");
  if (m.num_rows < 0) r.error("FileMetaData.num_rows is negative");
  return m;
}

PageHeader parse_page_header(const uint8_t* data, size_t size, const std::string& what, size_t& header_size) {
  ThriftReader r(data, size, what + ": page header");
  PageHeader h;
  bool has_type = false;
  r.begin_struct();
  for (ThriftField f = r.next_field(); f.type != ThriftType::Stop; f = r.next_field()) {
    switch (f.id) {
      case 1: expect(r, f, ThriftType::I32); h.type = read_enum<PageType>(r, 3, "PageHeader.type"); has_type = true; break;
      case 2: expect(r, f, ThriftType::I32); h.uncompressed_page_size = r.read_i32(); break;
      case 3: expect(r, f, ThriftType::I32); h.compressed_page_size = r.read_i32(); break;
      case 5: {
        expect(r, f, ThriftType::Struct);
        DataPageHeader d;
        r.begin_struct();
        for (ThriftField g = r.next_field(); g.type != ThriftType::Stop; g = r.next_field()) {
          if (g.id == 1) { expect(r, g, ThriftType::I32); d.num_values = r.read_i32(); }
          else if (g.id == 2) { expect(r, g, ThriftType::I32); d.encoding = read_encoding(r, "DataPageHeader.encoding"); }
          else if (g.id == 3) { expect(r, g, ThriftType::I32); d.definition_level_encoding = read_encoding(r, "DataPageHeader.definition_level_encoding"); }
          else r.skip(g.type);
        }
        r.end_struct();
        h.data_page = d;
        break;
      }
      case 7: {
        expect(r, f, ThriftType::Struct);
        DictionaryPageHeader d;
        r.begin_struct();
        for (ThriftField g = r.next_field(); g.type != ThriftType::Stop; g = r.next_field()) {
          if (g.id == 1) { expect(r, g, ThriftType::I32); d.num_values = r.read_i32(); }
          else if (g.id == 2) { expect(r, g, ThriftType::I32); d.encoding = read_encoding(r, "DictionaryPageHeader.encoding"); }
          else r.skip(g.type);
        }
        r.end_struct();
        h.dictionary_page = d;
        break;
      }
      case 8: {
        expect(r, f, ThriftType::Struct);
        DataPageHeaderV2 d;
        r.begin_struct();
        for (ThriftField g = r.next_field(); g.type != ThriftType::Stop; g = r.next_field()) {
          switch (g.id) {
            case 1: expect(r, g, ThriftType::I32); d.num_values = r.read_i32(); break;
            case 2: expect(r, g, ThriftType::I32); d.num_nulls = r.read_i32(); break;
            case 3: expect(r, g, ThriftType::I32); d.num_rows = r.read_i32(); break;
            case 4: expect(r, g, ThriftType::I32); d.encoding = read_encoding(r, "DataPageHeaderV2.encoding"); break;
            case 5: expect(r, g, ThriftType::I32); d.definition_levels_byte_length = r.read_i32(); break;
            case 6: expect(r, g, ThriftType::I32); d.repetition_levels_byte_length = r.read_i32(); break;
            case 7: d.is_compressed = r.read_bool(g); break;
            default: r.skip(g.type);
          }
        }
        r.end_struct();
        h.data_page_v2 = d;
        break;
      }
      default: r.skip(f.type);
    }
  }
  r.end_struct();
  if (!has_type) r.error("PageHeader without a type");
  if (h.uncompressed_page_size < 0 || h.compressed_page_size < 0) r.error("PageHeader has a negative page size");
  if (h.data_page && h.data_page->num_values < 0) r.error("DataPageHeader.num_values is negative");
  if (h.dictionary_page && h.dictionary_page->num_values < 0) r.error("DictionaryPageHeader.num_values is negative");
  if (h.data_page_v2) {
    const auto& d = *h.data_page_v2;
    if (d.num_values < 0 || d.num_nulls < 0 || d.num_nulls > d.num_values || d.definition_levels_byte_length < 0 ||
        d.repetition_levels_byte_length < 0)
      r.error("DataPageHeaderV2 has a negative or inconsistent count or length");
  }
  header_size = r.position();
  return h;
}

}  // namespace onebit::parquet
