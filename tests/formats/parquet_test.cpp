// The Parquet reader against files pyarrow wrote (tests/fixtures/hub-fixture and
// tests/fixtures/parquet, made by tools/make_parquet_fixtures.py): every file's rows, converted to
// JSON lines, equal pyarrow's json.dumps of the same rows byte for byte. The decoders are also
// checked against small reference encoders on fresh random inputs, and corrupt files must end in an
// onebit::Error that names the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"
#include "onebit/data/parquet_jsonl.h"
#include "onebit/formats/parquet/file_reader.h"
#include "onebit/formats/parquet/level_decoder.h"
#include "onebit/formats/parquet/value_decoder.h"
#include "test_seed.h"

using namespace onebit;
using namespace onebit::parquet;

namespace {

const fs::path kFixtures = fs::path(ONEBIT_TEST_FIXTURES);

std::vector<fs::path> parquet_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().extension() == ".parquet") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

fs::path expected_of(const fs::path& p) {
  fs::path e = p;
  return e.replace_extension(".expected.jsonl");
}

std::string to_jsonl(FileReader& r) {
  std::string out;
  RowGroupData rg;
  for (size_t g = 0; g < r.num_row_groups(); ++g) {
    r.read_row_group(g, rg);
    for (size_t row = 0; row < rg.num_rows; ++row) data::append_json_row(out, r.columns(), rg, row);
  }
  return out;
}

std::vector<nlohmann::json> expected_rows(const fs::path& p) {
  std::vector<nlohmann::json> rows;
  std::string text = read_file(expected_of(p));
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    rows.push_back(nlohmann::json::parse(text.substr(start, nl - start)));
    start = nl + 1;
  }
  return rows;
}

fs::path temp_path(const std::string& name) {
  fs::path d = fs::temp_directory_path() / cat("onebit-parquet-", ::getpid());
  fs::create_directories(d);
  return d / name;
}

// Expects f() to throw an onebit::Error whose one-line message contains every needle.
template <typename F>
void expect_error(F f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

}  // namespace

TEST(Parquet, HubFixtureContentMatchesPyarrowByteForByte) {
  std::vector<fs::path> files = parquet_files(kFixtures / "hub-fixture");
  ASSERT_EQ(files.size(), 6u);
  for (const fs::path& p : files) {
    SCOPED_TRACE(p.string());
    FileReader r(p, {"content"});
    EXPECT_EQ(to_jsonl(r), read_file(expected_of(p)));
  }
}

TEST(Parquet, OwnFixturesMatchPyarrowByteForByte) {
  std::vector<fs::path> files = parquet_files(kFixtures / "parquet");
  ASSERT_GE(files.size(), 18u);
  for (const fs::path& p : files) {
    SCOPED_TRACE(p.string());
    FileReader r(p);
    std::string want = read_file(expected_of(p));
    ASSERT_FALSE(want.empty());
    EXPECT_EQ(to_jsonl(r), want);
  }
}

TEST(Parquet, ConversionWritesTheExpectedFile) {
  for (const fs::path& p : parquet_files(kFixtures / "hub-fixture")) {
    fs::path out = temp_path("hub.jsonl");
    data::ParquetToJsonlResult res = data::parquet_to_jsonl(p, out, {"content"}, false);
    EXPECT_EQ(read_file(out), read_file(expected_of(p))) << p;
    EXPECT_EQ(res.rows, expected_rows(p).size());
    EXPECT_EQ(res.bytes_written, fs::file_size(out));
  }
}

TEST(Parquet, ProjectionReadsOnlyTheRequestedColumnsInTheRequestedOrder) {
  fs::path p = kFixtures / "parquet" / "codec_snappy.parquet";
  FileReader r(p, {"size", "content"});
  ASSERT_EQ(r.columns().size(), 2u);
  EXPECT_EQ(r.columns()[0].name, "size");
  EXPECT_EQ(r.columns()[1].name, "content");
  EXPECT_EQ(r.columns()[0].type, PhysicalType::Int64);
  std::vector<nlohmann::json> want = expected_rows(p);
  RowGroupData rg;
  r.read_row_group(0, rg);
  ASSERT_EQ(rg.columns.size(), 2u);
  ASSERT_EQ(rg.num_rows, want.size());
  for (size_t i = 0; i < rg.num_rows; ++i) {
    int64_t size;
    ASSERT_EQ(rg.columns[0].value(i).size(), 8u);
    std::memcpy(&size, rg.columns[0].value(i).data(), 8);
    EXPECT_EQ(size, want[i]["size"].get<int64_t>());
    EXPECT_EQ(rg.columns[1].value(i), want[i]["content"].get<std::string>());
  }
}

TEST(Parquet, NullsAreFlaggedWhereTheWriterPutThem) {
  for (const char* name : {"nulls_v1.parquet", "nulls_v2.parquet"}) {
    fs::path p = kFixtures / "parquet" / name;
    FileReader r(p, {"content", "all_null"});
    EXPECT_TRUE(r.columns()[0].nullable);
    std::vector<nlohmann::json> want = expected_rows(p);
    RowGroupData rg;
    r.read_row_group(0, rg);
    ASSERT_EQ(rg.num_rows, want.size());
    size_t nulls = 0;
    for (size_t i = 0; i < rg.num_rows; ++i) {
      EXPECT_EQ(rg.columns[0].is_null(i), want[i]["content"].is_null()) << name << " row " << i;
      EXPECT_TRUE(rg.columns[1].is_null(i));
      nulls += rg.columns[0].is_null(i);
    }
    EXPECT_GT(nulls, 5u);
    EXPECT_LT(nulls, rg.num_rows);
  }
}

TEST(Parquet, SeveralRowGroupsAreReadOneAtATime) {
  fs::path p = kFixtures / "parquet" / "row_groups.parquet";
  FileReader r(p, {"content"});
  ASSERT_EQ(r.num_row_groups(), 8u);  // 50 rows, 7 per group
  EXPECT_EQ(r.num_rows(), 50);
  RowGroupData rg;
  size_t total = 0;
  for (size_t g = 0; g < r.num_row_groups(); ++g) {
    r.read_row_group(g, rg);
    EXPECT_EQ(rg.num_rows, g < 7 ? 7u : 1u);
    total += rg.num_rows;
  }
  EXPECT_EQ(total, 50u);
  expect_error([&] { r.read_row_group(8, rg); }, {"row_groups.parquet", "row group 8"});
}

TEST(Parquet, MemoryHoldsOneRowGroupNotTheFile) {
  // 8 row groups: what stays allocated after reading them all is about the largest group's values,
  // far below the file's total.
  fs::path p = kFixtures / "parquet" / "row_groups.parquet";
  FileReader r(p, {"content"});
  RowGroupData rg;
  size_t total_bytes = 0, largest_group = 0, peak = 0;
  for (size_t g = 0; g < r.num_row_groups(); ++g) {
    r.read_row_group(g, rg);
    size_t bytes = 0;
    for (size_t i = 0; i < rg.num_rows; ++i) bytes += rg.columns[0].is_null(i) ? 0 : rg.columns[0].value(i).size();
    total_bytes += bytes;
    largest_group = std::max(largest_group, bytes);
    peak = std::max(peak, rg.columns[0].memory_bytes());
  }
  EXPECT_GT(total_bytes, 4 * largest_group);
  EXPECT_LT(peak, 2 * largest_group + 4096);
}

TEST(Parquet, UnknownColumnIsAnErrorNamingTheFileAndColumn) {
  fs::path p = kFixtures / "parquet" / "codec_zstd.parquet";
  expect_error([&] { FileReader r(p, {"content", "no\nsuch"}); }, {"codec_zstd.parquet", "no\\nsuch", "content, lang, size"});
}

// --- decoders against reference encoders, on fresh random inputs ---

namespace {

void put_uleb(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

void put_bits(std::vector<uint8_t>& out, const std::vector<uint64_t>& vals, int bw) {
  size_t start = out.size();
  out.resize(start + (vals.size() * bw + 7) / 8, 0);
  uint64_t bit = 0;
  for (uint64_t v : vals)
    for (int b = 0; b < bw; ++b, ++bit)
      if ((v >> b) & 1) out[start + bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
}

// The RLE / bit-packed hybrid, choosing RLE for runs of equal values and bit-packing otherwise.
std::vector<uint8_t> encode_hybrid(const std::vector<uint32_t>& v, int bw, std::mt19937_64& rng) {
  std::vector<uint8_t> out;
  size_t i = 0;
  while (i < v.size()) {
    size_t run = 1;
    while (i + run < v.size() && v[i + run] == v[i]) ++run;
    if (run >= 8 || rng() % 4 == 0) {
      put_uleb(out, run << 1);
      for (int k = 0; k < (bw + 7) / 8; ++k) out.push_back(static_cast<uint8_t>(v[i] >> (8 * k)));
      i += run;
    } else {
      size_t groups = std::min<size_t>((v.size() - i + 7) / 8, 1 + rng() % 4);
      std::vector<uint64_t> vals;
      for (size_t k = 0; k < groups * 8; ++k) vals.push_back(i + k < v.size() ? v[i + k] : 0);
      put_uleb(out, (groups << 1) | 1);
      put_bits(out, vals, bw);
      i += groups * 8;
    }
  }
  return out;
}

int64_t zz_dec(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }
uint64_t zz_enc(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }

// DELTA_BINARY_PACKED with blocks of 128 values in 4 miniblocks, as the spec describes it.
std::vector<uint8_t> encode_delta(const std::vector<int64_t>& v) {
  std::vector<uint8_t> out;
  put_uleb(out, 128);
  put_uleb(out, 4);
  put_uleb(out, v.size());
  put_uleb(out, zz_enc(v.empty() ? 0 : v[0]));
  for (size_t b = 1; b < v.size(); b += 128) {
    size_t n = std::min<size_t>(128, v.size() - b);
    std::vector<uint64_t> deltas(n);
    for (size_t k = 0; k < n; ++k) deltas[k] = static_cast<uint64_t>(v[b + k]) - static_cast<uint64_t>(v[b + k - 1]);
    int64_t min_delta = INT64_MAX;
    for (uint64_t d : deltas) min_delta = std::min(min_delta, static_cast<int64_t>(d));
    put_uleb(out, zz_enc(min_delta));
    std::vector<std::vector<uint64_t>> minis(4);
    std::vector<uint8_t> widths(4, 0);
    for (size_t m = 0; m < 4; ++m) {
      for (size_t k = m * 32; k < m * 32 + 32; ++k) {
        uint64_t x = k < n ? deltas[k] - static_cast<uint64_t>(min_delta) : 0;
        minis[m].push_back(x);
        widths[m] = std::max<uint8_t>(widths[m], static_cast<uint8_t>(x ? 64 - __builtin_clzll(x) : 0));
      }
    }
    out.insert(out.end(), widths.begin(), widths.end());
    for (size_t m = 0; m < 4 && m * 32 < n; ++m) put_bits(out, minis[m], widths[m]);
  }
  (void)zz_dec;
  return out;
}

}  // namespace

TEST(ParquetDecoders, HybridLevelsMatchAReferenceEncoder) {
  std::mt19937_64 rng(test::test_seed(1));
  for (int trial = 0; trial < 200; ++trial) {
    int bw = static_cast<int>(rng() % 33);
    size_t n = rng() % 3000;
    std::vector<uint32_t> v(n);
    uint64_t mask = bw == 32 ? 0xffffffffull : (1ull << bw) - 1;
    for (size_t i = 0; i < n; ++i) v[i] = (rng() % 3 == 0 && i) ? v[i - 1] : static_cast<uint32_t>(rng() & mask);
    std::vector<uint8_t> enc = encode_hybrid(v, bw, rng);
    std::string what = "levels";
    RleBitPackedDecoder dec(enc.data(), enc.size(), bw, what);
    std::vector<uint32_t> got(n);
    // Decoded in uneven slices, as pages ask for them.
    size_t done = 0;
    while (done < n) {
      size_t k = std::min<size_t>(n - done, 1 + rng() % 100);
      dec.decode(got.data() + done, k);
      done += k;
    }
    ASSERT_EQ(got, v) << "bit width " << bw << ", " << n << " values";
    // Asking for more values than were encoded is an error: past the padding of a last bit-packed
    // group (at most 7 values) there is no run left.
    RleBitPackedDecoder again(enc.data(), enc.size(), bw, what);
    std::vector<uint32_t> sink(n + 8);
    EXPECT_THROW(again.decode(sink.data(), n + 8), Error) << "bit width " << bw << ", " << n << " values";
  }
}

TEST(ParquetDecoders, DeltaBinaryPackedMatchesAReferenceEncoder) {
  std::mt19937_64 rng(test::test_seed(2));
  for (int trial = 0; trial < 200; ++trial) {
    size_t n = rng() % 1000;
    std::vector<int64_t> v(n);
    int kind = static_cast<int>(rng() % 3);
    for (size_t i = 0; i < n; ++i) {
      if (kind == 0) v[i] = static_cast<int64_t>(rng());                               // full range: deltas wrap
      else if (kind == 1) v[i] = (i ? v[i - 1] : 0) + static_cast<int64_t>(rng() % 100) - 30;  // small deltas
      else v[i] = rng() % 2 ? INT64_MIN : INT64_MAX;                                 // extremes
    }
    std::vector<uint8_t> enc = encode_delta(v);
    std::vector<int64_t> got;
    size_t used = decode_delta_binary_packed(enc.data(), enc.size(), n, got, "delta");
    ASSERT_EQ(got, v) << n << " values, kind " << kind;
    EXPECT_EQ(used, enc.size());
    if (n > 1) {
      EXPECT_THROW(decode_delta_binary_packed(enc.data(), enc.size() - 1, n, got, "delta"), Error);
    }
  }
}

TEST(ParquetDecoders, DeltaByteArrayRebuildsPrefixes) {
  std::mt19937_64 rng(test::test_seed(3));
  std::vector<std::string> v;
  for (int i = 0; i < 300; ++i) {
    std::string s = v.empty() ? "" : v.back().substr(0, rng() % (v.back().size() + 1));
    for (size_t k = rng() % 12; k > 0; --k) s += static_cast<char>('a' + rng() % 26);
    v.push_back(s);
  }
  // Prefix lengths, then suffix lengths, then suffix bytes.
  std::vector<int64_t> pre, suf_len;
  std::string suffixes;
  for (size_t i = 0; i < v.size(); ++i) {
    size_t p = 0;
    if (i)
      while (p < v[i].size() && p < v[i - 1].size() && v[i][p] == v[i - 1][p]) ++p;
    pre.push_back(static_cast<int64_t>(p));
    suf_len.push_back(static_cast<int64_t>(v[i].size() - p));
    suffixes += v[i].substr(p);
  }
  std::vector<uint8_t> enc = encode_delta(pre), lens = encode_delta(suf_len);
  enc.insert(enc.end(), lens.begin(), lens.end());
  enc.insert(enc.end(), suffixes.begin(), suffixes.end());
  std::vector<std::string_view> got;
  std::string scratch;
  decode_delta_byte_array(enc.data(), enc.size(), v.size(), got, scratch, "dba");
  ASSERT_EQ(got.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(got[i], v[i]) << i;
  // A prefix longer than the previous value is refused.
  pre[1] = static_cast<int64_t>(v[0].size()) + 1;
  std::vector<uint8_t> bad = encode_delta(pre);
  bad.insert(bad.end(), lens.begin(), lens.end());
  bad.insert(bad.end(), suffixes.begin(), suffixes.end());
  EXPECT_THROW(decode_delta_byte_array(bad.data(), bad.size(), v.size(), got, scratch, "dba"), Error);
}

TEST(ParquetJson, FloatsAreWrittenAsPythonReprWritesThem) {
  auto repr = [](double d) {
    std::string s;
    data::append_python_float(s, d);
    return s;
  };
  EXPECT_EQ(repr(1.0), "1.0");
  EXPECT_EQ(repr(-0.0), "-0.0");
  EXPECT_EQ(repr(0.1), "0.1");
  EXPECT_EQ(repr(1e-5), "1e-05");
  EXPECT_EQ(repr(0.0001), "0.0001");
  EXPECT_EQ(repr(1e16), "1e+16");
  EXPECT_EQ(repr(1234567890123456.0), "1234567890123456.0");
  EXPECT_EQ(repr(1.5e300), "1.5e+300");
  EXPECT_EQ(repr(static_cast<double>(0.1f)), "0.10000000149011612");
}

TEST(ParquetJson, InvalidUtf8IsReplacedAsPythonDoes) {
  std::string out;
  EXPECT_EQ(data::append_json_string(out, std::string("a\xff" "b\xe2\x82" "c\x01\"", 8)), 2u);
  EXPECT_EQ(out, "\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\\u0001\\\"\"");
}

// --- corrupt files ---

namespace {

std::string fixture_bytes(const char* name) { return read_file(kFixtures / "parquet" / name); }

void read_all(const std::string& bytes, const std::string& name) {
  FileReader r(name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  RowGroupData rg;
  for (size_t g = 0; g < r.num_row_groups(); ++g) r.read_row_group(g, rg);
}

}  // namespace

TEST(ParquetCorrupt, TruncatedFilesAreErrorsNamingTheFile) {
  std::string good = fixture_bytes("nulls_v2.parquet");
  std::mt19937_64 rng(test::test_seed(4));
  for (int i = 0; i < 50; ++i) {
    size_t len = rng() % good.size();
    expect_error([&] { read_all(good.substr(0, len), "cut.parquet"); }, {"cut.parquet"});
  }
}

TEST(ParquetCorrupt, BadMagicAndLyingFooterLength) {
  std::string good = fixture_bytes("codec_none.parquet");
  std::string bad = good;
  bad[0] = 'X';
  expect_error([&] { read_all(bad, "magic.parquet"); }, {"magic.parquet", "PAR1"});
  bad = good;
  uint32_t huge = static_cast<uint32_t>(good.size());
  std::memcpy(bad.data() + bad.size() - 8, &huge, 4);
  expect_error([&] { read_all(bad, "footer.parquet"); }, {"footer.parquet", "footer length"});
}

TEST(ParquetCorrupt, GarbageThriftIsAnError) {
  std::string bad = fixture_bytes("codec_none.parquet");
  uint32_t footer_len;
  std::memcpy(&footer_len, bad.data() + bad.size() - 8, 4);
  // Every footer byte 0xff: a field header with an unknown wire type.
  std::fill(bad.end() - 8 - footer_len, bad.end() - 8, '\xff');
  expect_error([&] { read_all(bad, "thrift.parquet"); }, {"thrift.parquet", "footer", "bad thrift"});
}

TEST(ParquetCorrupt, LyingByteArrayLengthIsAnError) {
  // PLAIN, uncompressed: the "required" column's values lie in the file as <u32 length><bytes>.
  std::string bad = fixture_bytes("types_plain_v2_uncompressed.parquet");
  std::string needle("\x05\x00\x00\x00row 0", 9);
  size_t at = bad.find(needle);
  ASSERT_NE(at, std::string::npos);
  uint32_t lie = 0x7ffffff0;
  std::memcpy(bad.data() + at, &lie, 4);
  expect_error([&] { read_all(bad, "lie.parquet"); }, {"lie.parquet", "column \"required\"", "claims"});
}

TEST(ParquetCorrupt, PageClaimingMoreBytesThanItsChunkIsAnError) {
  // The first page header of the first column: thrift compact fields 1 (type), 2 (uncompressed
  // size), 3 (compressed size), each a 0x15 field header and a zigzag varint. The compressed size
  // is rewritten in place (same varint length) to about a million bytes.
  std::string bad = fixture_bytes("codec_none.parquet");
  FileReader good("codec_none.parquet", reinterpret_cast<const uint8_t*>(bad.data()), bad.size());
  const ColumnChunk& c = good.metadata().row_groups[0].columns[0];
  size_t pos = static_cast<size_t>(c.dictionary_page_offset.value_or(c.data_page_offset));
  auto skip_varint = [&](size_t p) {
    while (static_cast<uint8_t>(bad[p]) & 0x80) ++p;
    return p + 1;
  };
  for (int field = 1; field <= 2; ++field) {
    ASSERT_EQ(static_cast<uint8_t>(bad[pos]), 0x15) << "field " << field;
    pos = skip_varint(pos + 1);
  }
  ASSERT_EQ(static_cast<uint8_t>(bad[pos]), 0x15);
  size_t v = pos + 1, end = skip_varint(v);
  ASSERT_GE(end - v, 2u);  // the fixture's pages are over 63 bytes
  for (size_t i = v; i + 1 < end; ++i) bad[i] = '\xfe';
  bad[end - 1] = '\x7f';
  expect_error([&] { read_all(bad, "page.parquet"); }, {"page.parquet", "column \"content\"", "the chunk has"});
}
