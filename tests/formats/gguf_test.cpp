// GGUF reader/writer and ggml's ternary block layouts: round trips on fresh random inputs, every
// truncation and a set of corrupt headers end in one onebit::Error, and, with the oracle Python
// (scripts/install-test-oracles.sh), byte-for-byte agreement with the `gguf` package (llama.cpp's
// gguf-py) on quantization and on reading files onebit wrote.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"
#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "onebit/formats/gguf/dequantize.h"
#include "onebit/formats/gguf/half.h"
#include "onebit/formats/gguf/reader.h"
#include "onebit/formats/gguf/ternary_blocks.h"
#include "onebit/formats/gguf/writer.h"
#include "oracle_python.h"
#include "test_seed.h"

using namespace onebit;
using namespace onebit::formats::gguf;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / cat("onebit-gguf-", name, "-", ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<float> random_floats(Rng& rng, size_t n, float scale) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.normal() * scale;
  return v;
}

// Ternary values (-d, 0, d) with a per-block d that is exact in f16, so quantize → dequantize is exact.
std::vector<float> random_ternary_blocks(Rng& rng, size_t blocks) {
  std::vector<float> v(blocks * 256);
  for (size_t b = 0; b < blocks; ++b) {
    const float d = f16_to_f32(f32_to_f16(0.01f + rng.uniform_float()));
    for (int j = 0; j < 256; ++j) v[b * 256 + j] = d * static_cast<float>(static_cast<int>(rng.uniform_int(3)) - 1);
    v[b * 256 + rng.uniform_int(256)] = d;  // max |x| of the block is d
  }
  return v;
}

std::string read_all(const fs::path& p) { return read_file(p); }

void write_raw(const fs::path& p, const void* data, size_t n) {
  std::ofstream f(p, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

// A small file with metadata of every value type and tensors of every type onebit writes.
struct Sample {
  std::vector<float> f32 = {1.5f, -2.25f, 0.0f, 3.0f, 7.0f, -1.0f};
  std::vector<float> tern;
  Sample() {
    Rng rng(7);
    tern = random_ternary_blocks(rng, 4);
  }
  void write(const fs::path& p) const {
    GgufWriter w;
    w.set_string("general.architecture", "bitnet");
    w.set("u8", Value::of(uint8_t{200}));
    w.set("i8", Value::of(int8_t{-100}));
    w.set("u16", Value::of(uint16_t{60000}));
    w.set("i16", Value::of(int16_t{-30000}));
    w.set_u32("u32", 4000000000u);
    w.set_i32("i32", -2000000000);
    w.set_f32("f32", 0.5f);
    w.set_bool("bool", true);
    w.set("u64", Value::of(uint64_t{1} << 40));
    w.set("i64", Value::of(int64_t{-(int64_t{1} << 40)}));
    w.set("f64", Value::of(0.25));
    w.set_string_array("strings", {"a", "", "Ġhello", "\xe2\x82\xac"});
    w.set_i32_array("ints", {1, -2, 3});
    w.set_f32_array("floats", {});
    w.set_alignment(64);
    w.add_tensor("f32", GgmlType::F32, {3, 2}, std::vector<uint8_t>((const uint8_t*)f32.data(), (const uint8_t*)(f32.data() + 6)));
    std::vector<uint8_t> h(12);
    for (int i = 0; i < 6; ++i) {
      const uint16_t x = f32_to_f16(f32[i]);
      std::memcpy(h.data() + 2 * i, &x, 2);
    }
    w.add_tensor("f16", GgmlType::F16, {6}, h);
    for (int i = 0; i < 6; ++i) {
      const uint16_t x = f32_to_bf16(f32[i]);
      std::memcpy(h.data() + 2 * i, &x, 2);
    }
    w.add_tensor("bf16", GgmlType::BF16, {2, 3}, h);
    std::vector<uint8_t> t2(4 * kTQ2BlockBytes), t1(4 * kTQ1BlockBytes);
    quantize_tq2_0(tern, t2);
    quantize_tq1_0(tern, t1);
    w.add_tensor("blk.0.tq2", GgmlType::TQ2_0, {512, 2}, t2);
    w.add_tensor("blk.0.tq1", GgmlType::TQ1_0, {256, 4}, t1);
    // Last, 64 bytes: the data section then ends on the alignment with no trailing padding, so every
    // strict prefix of the file is truncated.
    w.add_tensor("tail", GgmlType::F32, {16}, std::vector<uint8_t>(64, 0));
    w.write(p);
  }
};

TEST(GgufHalf, EveryHalfRoundTripsAndRoundingIsToNearestEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const bool nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
    if (nan) continue;
    ASSERT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << h;
  }
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3C00);          // tie → even (down)
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3C02);          // tie → even (up)
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);                    // rounds to inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);       // half of the smallest subnormal → 0
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), 0x3F80);          // tie → even
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(-3.5f)), -3.5f);
}

TEST(GgufTernary, QuantizeDequantizeIsExactOnTernaryBlocks) {
  Rng rng(test::test_seed(1));
  const size_t blocks = 1 + rng.uniform_int(8);
  const auto x = random_ternary_blocks(rng, blocks);
  std::vector<uint8_t> q2(blocks * kTQ2BlockBytes), q1(blocks * kTQ1BlockBytes);
  std::vector<float> y(x.size());
  quantize_tq2_0(x, q2);
  dequantize_tq2_0(q2, y);
  EXPECT_EQ(x, y);
  quantize_tq1_0(x, q1);
  std::fill(y.begin(), y.end(), 9.0f);
  dequantize_tq1_0(q1, y);
  EXPECT_EQ(x, y);
}

TEST(GgufTernary, CodesEncodeWithUnitScaleAndZeroBlocksWithZeroScale) {
  Rng rng(test::test_seed(2));
  std::vector<int8_t> codes(512);
  for (auto& c : codes) c = static_cast<int8_t>(static_cast<int>(rng.uniform_int(3)) - 1);
  std::fill(codes.begin() + 256, codes.end(), 0);
  std::vector<uint8_t> q2(2 * kTQ2BlockBytes), q1(2 * kTQ1BlockBytes);
  encode_codes_tq2_0(codes, q2);
  encode_codes_tq1_0(codes, q1);
  std::vector<float> y2(512), y1(512);
  dequantize_tq2_0(q2, y2);
  dequantize_tq1_0(q1, y1);
  for (size_t i = 0; i < codes.size(); ++i) {
    ASSERT_EQ(y2[i], static_cast<float>(codes[i])) << i;
    ASSERT_EQ(y1[i], static_cast<float>(codes[i])) << i;
  }
  uint16_t d;
  std::memcpy(&d, q2.data() + kTQ2BlockBytes + 64, 2);
  EXPECT_EQ(d, 0);
  codes[3] = 2;
  EXPECT_THROW(encode_codes_tq2_0(codes, q2), Error);
  EXPECT_THROW(quantize_tq2_0(std::vector<float>(100), q2), Error);
}

TEST(GgufFile, WriteThenReadGivesBackEveryValueAndTensor) {
  const fs::path dir = temp_dir("roundtrip");
  const Sample s;
  s.write(dir / "a.gguf");
  EXPECT_FALSE(fs::exists(cat((dir / "a.gguf").string(), ".tmp-", ::getpid())));
  GgufReader r(dir / "a.gguf");
  EXPECT_EQ(r.version(), 3u);
  EXPECT_EQ(r.alignment(), 64u);
  EXPECT_EQ(r.get_string("general.architecture"), "bitnet");
  EXPECT_EQ(r.get_int("u8"), 200);
  EXPECT_EQ(r.get_int("i8"), -100);
  EXPECT_EQ(r.get_int("u16"), 60000);
  EXPECT_EQ(r.get_int("i16"), -30000);
  EXPECT_EQ(r.get_int("u32"), 4000000000LL);
  EXPECT_EQ(r.get_int("i32"), -2000000000LL);
  EXPECT_EQ(r.get_float("f32"), 0.5);
  EXPECT_TRUE(r.get_bool("bool"));
  EXPECT_EQ(r.get_int("u64"), int64_t{1} << 40);
  EXPECT_EQ(r.get_int("i64"), -(int64_t{1} << 40));
  EXPECT_EQ(r.get_float("f64"), 0.25);
  EXPECT_EQ(r.get_string_array("strings"), (std::vector<std::string>{"a", "", "Ġhello", "\xe2\x82\xac"}));
  EXPECT_EQ(r.get_int_array("ints"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_TRUE(r.get_float_array("floats").empty());
  EXPECT_EQ(r.metadata().front().first, "general.architecture");  // insertion order kept
  EXPECT_THROW(r.get_string("u8"), Error);
  EXPECT_THROW(r.get_int("missing"), Error);

  ASSERT_EQ(r.tensors().size(), 6u);
  for (const auto& t : r.tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
  EXPECT_EQ(r.read_f32(r.tensor("f32")), s.f32);
  EXPECT_EQ(r.read_f32(r.tensor("f16")), s.f32);  // all exact in f16 and bf16
  EXPECT_EQ(r.read_f32(r.tensor("bf16")), s.f32);
  EXPECT_EQ(r.tensor("f32").shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.read_f32(r.tensor("blk.0.tq2")), s.tern);
  EXPECT_EQ(r.read_f32(r.tensor("blk.0.tq1")), s.tern);
  EXPECT_THROW(r.tensor("nope"), Error);
  fs::remove_all(dir);
}

TEST(GgufFile, WriterRefusesBadTensorsAndKeys) {
  GgufWriter w;
  EXPECT_THROW(w.add_tensor("x", GgmlType::TQ2_0, {100, 2}, std::vector<uint8_t>{}), Error);
  EXPECT_THROW(w.add_tensor(std::string(64, 'n'), GgmlType::F32, {1}, std::vector<uint8_t>(4)), Error);
  EXPECT_THROW(w.add_tensor("x", GgmlType::F32, {1, 1, 1, 1, 1}, std::vector<uint8_t>(4)), Error);
  w.add_tensor("x", GgmlType::F32, {1}, std::vector<uint8_t>(4));
  EXPECT_THROW(w.add_tensor("x", GgmlType::F32, {1}, std::vector<uint8_t>(4)), Error);
  EXPECT_THROW(w.set_alignment(48), Error);
  EXPECT_THROW(w.set("", Value::of(1u)), Error);
  // A producer that fills the wrong size fails the write and leaves no file behind.
  GgufWriter bad;
  bad.add_tensor("y", GgmlType::F32, {2}, [](std::vector<uint8_t>& b) { b.resize(4); });
  const fs::path dir = temp_dir("badwrite");
  EXPECT_THROW(bad.write(dir / "b.gguf"), Error);
  EXPECT_TRUE(fs::is_empty(dir));
  fs::remove_all(dir);
}

// Every strict prefix of a valid file, and a set of corrupt headers, end in one onebit::Error that
// names the file; none crashes (the fuzz driver, fuzz_gguf, explores further under ASan).
TEST(GgufFile, TruncatedAndCorruptFilesAreOneLineErrors) {
  const fs::path dir = temp_dir("bad");
  Sample().write(dir / "good.gguf");
  const std::string good = read_all(dir / "good.gguf");
  auto expect_error = [&](const std::string& bytes, const std::string& what) {
    const fs::path p = dir / "bad.gguf";
    write_raw(p, bytes.data(), bytes.size());
    try {
      GgufReader r(p);
      for (const auto& t : r.tensors())
        if (can_dequantize(t.type)) r.read_f32(t);
      ADD_FAILURE() << what << ": no error";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(p.string()), std::string::npos) << what << ": " << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << what << ": " << m;
    }
  };
  for (size_t n = 0; n < good.size(); ++n) expect_error(good.substr(0, n), cat("prefix of ", n, " bytes"));
  std::string s = good;
  s[0] = 'X';
  expect_error(s, "bad magic");
  s = good;
  s[4] = 1;
  expect_error(s, "version 1");
  auto put_u64 = [](std::string& b, size_t at, uint64_t v) { std::memcpy(&b[at], &v, 8); };
  s = good;
  put_u64(s, 8, uint64_t{1} << 60);
  expect_error(s, "huge tensor count");
  s = good;
  put_u64(s, 16, ~uint64_t{0});
  expect_error(s, "huge metadata count");
  s = good;
  put_u64(s, 24, uint64_t{1} << 62);
  expect_error(s, "huge key length");
  s = good;
  std::memcpy(&s[32 + 20], "\x63\x00\x00\x00", 4);  // value type of "general.architecture" → 99
  expect_error(s, "unknown value type");
  // The tensor type of the last tensor info: find "blk.0.tq1" and patch the u32 after its ne.
  s = good;
  const size_t at = s.find("blk.0.tq1");
  ASSERT_NE(at, std::string::npos);
  std::memcpy(&s[at + 9 + 4 + 16], "\xff\x00\x00\x00", 4);
  expect_error(s, "unknown ggml type");
  s = good;
  std::memcpy(&s[at + 9 + 4 + 16], "\x0c\x00\x00\x00", 4);  // Q4_K: parses, but onebit cannot read it
  expect_error(s, "unreadable ggml type");
  s = good;
  put_u64(s, at + 9 + 4 + 16 + 4, 3);
  expect_error(s, "unaligned offset");
  s = good;
  put_u64(s, at + 9 + 4 + 16 + 4, 0);
  expect_error(s, "overlapping tensors");
  expect_error("GGUF", "only the magic");
  expect_error(std::string("{\"__metadata__\": {}}"), "a JSON file");
  fs::remove_all(dir);
}

// --- the `gguf` package as the oracle ---

std::string run_python(const std::string& py, const std::string& args) {
  const std::string cmd = py + " " + std::string(ONEBIT_SOURCE_DIR) + "/tools/check_gguf.py " + args;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return cmd;
}

TEST(GgufOracle, QuantizationMatchesTheGgufPackageByteForByte) {
  ONEBIT_ORACLE_PYTHON_OR_SKIP(py);
  const fs::path dir = temp_dir("oracle-q");
  Rng rng(test::test_seed(3));
  const size_t blocks = 2 + rng.uniform_int(6);
  // Gaussian values (the codes come out of rounding x/max|x|) plus exact ternary blocks.
  auto x = random_floats(rng, blocks * 256, 0.02f + rng.uniform_float());
  // Ternary blocks with noise (codes spread over all 3^5 byte patterns, values near rounding edges).
  auto tern = random_ternary_blocks(rng, 32);
  for (auto& v : tern) v *= 1.0f + 0.4f * (rng.uniform_float() - 0.5f);
  x.insert(x.end(), tern.begin(), tern.end());
  std::fill(x.end() - 256, x.end(), 0.0f);  // an all-zero block: d = 0
  write_raw(dir / "x.f32", x.data(), x.size() * 4);
  for (const char* type : {"TQ2_0", "TQ1_0", "F16", "BF16"}) {
    run_python(py, cat("quantize ", type, " ", (dir / "x.f32").string(), " ", (dir / "ref.bin").string()));
    const std::string ref = read_all(dir / "ref.bin");
    std::vector<uint8_t> mine;
    const std::string t = type;
    if (t == "TQ2_0") {
      mine.resize(x.size() / 256 * kTQ2BlockBytes);
      quantize_tq2_0(x, mine);
    } else if (t == "TQ1_0") {
      mine.resize(x.size() / 256 * kTQ1BlockBytes);
      quantize_tq1_0(x, mine);
    } else {
      mine.resize(x.size() * 2);
      for (size_t i = 0; i < x.size(); ++i) {
        const uint16_t h = t == "F16" ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
        std::memcpy(mine.data() + 2 * i, &h, 2);
      }
    }
    ASSERT_EQ(ref.size(), mine.size()) << type;
    EXPECT_EQ(std::memcmp(ref.data(), mine.data(), mine.size()), 0) << type;
    // Dequantization of the same bytes agrees too.
    run_python(py, cat("dequantize ", type, " ", (dir / "ref.bin").string(), " ", (dir / "ref.f32").string()));
    const std::string deq = read_all(dir / "ref.f32");
    std::vector<float> theirs(x.size()), ours(x.size());
    ASSERT_EQ(deq.size(), x.size() * 4) << type;
    std::memcpy(theirs.data(), deq.data(), deq.size());
    dequantize(t == "TQ2_0" ? GgmlType::TQ2_0 : t == "TQ1_0" ? GgmlType::TQ1_0 : t == "F16" ? GgmlType::F16 : GgmlType::BF16,
               mine, ours, type);
    EXPECT_EQ(theirs, ours) << type;
  }
  fs::remove_all(dir);
}

TEST(GgufOracle, TheGgufPackageReadsOnebitFiles) {
  ONEBIT_ORACLE_PYTHON_OR_SKIP(py);
  const fs::path dir = temp_dir("oracle-read");
  const Sample s;
  s.write(dir / "a.gguf");
  run_python(py, cat("dump ", (dir / "a.gguf").string(), " ", (dir / "a.json").string()));
  const json doc = json::parse(read_all(dir / "a.json"));
  const json& md = doc.at("metadata");
  EXPECT_EQ(md.at("general.architecture"), "bitnet");
  EXPECT_EQ(md.at("u8"), 200);
  EXPECT_EQ(md.at("i16"), -30000);
  EXPECT_EQ(md.at("u32"), 4000000000LL);
  EXPECT_EQ(md.at("bool"), true);
  EXPECT_EQ(md.at("i64"), -(int64_t{1} << 40));
  EXPECT_EQ(md.at("f64"), 0.25);
  EXPECT_EQ(md.at("strings"), json::array({"a", "", "Ġhello", "\xe2\x82\xac"}));
  EXPECT_EQ(md.at("ints"), json::array({1, -2, 3}));
  EXPECT_EQ(md.at("general.alignment"), 64);
  const json& t = doc.at("tensors");
  EXPECT_EQ(t.at("f32").at("type"), "F32");
  EXPECT_EQ(t.at("f32").at("shape"), json::array({3, 2}));
  EXPECT_EQ(t.at("bf16").at("type"), "BF16");
  EXPECT_EQ(t.at("blk.0.tq2").at("type"), "TQ2_0");
  EXPECT_EQ(t.at("blk.0.tq1").at("type"), "TQ1_0");
  EXPECT_EQ(t.at("f16").at("values").get<std::vector<float>>(), s.f32);
  EXPECT_EQ(t.at("bf16").at("values").get<std::vector<float>>(), s.f32);
  EXPECT_EQ(t.at("blk.0.tq2").at("values").get<std::vector<float>>(), s.tern);
  EXPECT_EQ(t.at("blk.0.tq1").at("values").get<std::vector<float>>(), s.tern);
  fs::remove_all(dir);
}

}  // namespace
