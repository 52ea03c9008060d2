// safetensors against the format's defining implementation: a committed golden file written by the
// Python `safetensors` package (tools/check_safetensors.py golden), and, with the oracle Python
// (scripts/install-test-oracles.sh), Python reading files that onebit wrote.
#include "onebit/formats/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "oracle_python.h"

using namespace onebit;
using namespace onebit::formats;

namespace {

const fs::path kGolden = fs::path(ONEBIT_TEST_FIXTURES) / "formats" / "golden.safetensors";

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / cat("onebit-st-", name, "-", ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The golden tensors, as in tools/check_safetensors.py golden_tensors().
struct Golden {
  float weight[6];
  uint16_t bias[2] = {0x3C00, 0xC000};  // f16 1.0, -2.0
  int64_t ids[3] = {1, -2, 3000000000LL};
  uint8_t mask[4] = {0, 1, 2, 255};
  int8_t codes[4] = {-1, 0, 1, -128};
  float scale = 3.5f;
  Golden() {
    for (int i = 0; i < 6; ++i) weight[i] = static_cast<float>(i) * 0.25f - 0.5f;
  }
  void add_to(SafetensorsWriter& w) const {
    // Added in a different order from the file on purpose: the writer must sort like the Rust crate.
    w.add("mask", DType::U8, {4}, mask);
    w.add_f32("weight", {2, 3}, weight);
    w.add("codes", DType::I8, {2, 2}, codes);
    w.add("empty", DType::F32, {0}, nullptr);
    w.add("bias", DType::F16, {2}, bias);
    w.add("scale", DType::F32, {}, &scale);
    w.add("ids", DType::I64, {3}, ids);
    w.set_metadata("format", "pt");
  }
};

template <typename T>
std::vector<T> values(const SafetensorsFile& f, const std::string& name) {
  auto b = f.bytes(name);
  std::vector<T> v(b.size() / sizeof(T));
  if (!b.empty()) std::memcpy(v.data(), b.data(), b.size());
  return v;
}

std::string error_of(const fs::path& p) {
  try {
    SafetensorsFile f(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Safetensors, ReadsGoldenFileWrittenByPython) {
  SafetensorsFile f(kGolden);
  Golden g;
  ASSERT_EQ(f.tensors().size(), 7u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.info("weight").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.info("scale").shape, (std::vector<int64_t>{}));
  EXPECT_EQ(f.info("bias").dtype, DType::F16);
  std::vector<float> w(6);
  f.read_f32("weight", {2, 3}, w);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(w[i], g.weight[i]);
  EXPECT_EQ(values<uint16_t>(f, "bias"), (std::vector<uint16_t>{0x3C00, 0xC000}));
  EXPECT_EQ(values<int64_t>(f, "ids"), (std::vector<int64_t>{1, -2, 3000000000LL}));
  EXPECT_EQ(values<uint8_t>(f, "mask"), (std::vector<uint8_t>{0, 1, 2, 255}));
  EXPECT_EQ(values<int8_t>(f, "codes"), (std::vector<int8_t>{-1, 0, 1, -128}));
  EXPECT_EQ(values<float>(f, "scale"), (std::vector<float>{3.5f}));
  EXPECT_EQ(f.info("empty").numel(), 0u);
}

TEST(Safetensors, WriterIsByteIdenticalToPython) {
  Golden g;
  SafetensorsWriter w;
  g.add_to(w);
  std::string want = read_file(kGolden);
  std::string got = w.serialize();
  ASSERT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "header ours: " << w.header();
  fs::path d = temp_dir("golden");
  w.write(d / "x.safetensors");
  EXPECT_TRUE(read_file(d / "x.safetensors") == want);
  fs::remove_all(d);
}

TEST(Safetensors, RoundTripsRandomTensors) {
  Rng rng(7);
  std::vector<float> a(37 * 5), b(1000);
  for (float& x : a) x = rng.normal();
  for (float& x : b) x = rng.normal() * 1e-30f;
  SafetensorsWriter w;
  w.add_f32("model.layers.0.mlp.up_proj.weight", {37, 5}, a.data());
  w.add_f32("b", {10, 10, 10}, b.data());
  fs::path d = temp_dir("rt");
  w.write(d / "r.safetensors");
  SafetensorsFile f(d / "r.safetensors");
  std::vector<float> a2(a.size()), b2(b.size());
  f.read_f32("model.layers.0.mlp.up_proj.weight", {37, 5}, a2);
  f.read_f32("b", {10, 10, 10}, b2);
  EXPECT_EQ(std::memcmp(a.data(), a2.data(), a.size() * 4), 0);
  EXPECT_EQ(std::memcmp(b.data(), b2.data(), b.size() * 4), 0);
  EXPECT_EQ(w.header().size() % 8, 0u);  // header padded with spaces to 8 bytes, as the Rust crate does
  fs::remove_all(d);
}

TEST(Safetensors, PythonReadsWhatOnebitWrites) {
  ONEBIT_ORACLE_PYTHON_OR_SKIP(py);
  Rng rng(11);
  std::vector<float> w1(24 * 16), w2(16);
  for (float& x : w1) x = rng.normal() * 0.02f;
  for (float& x : w2) x = 1.0f + rng.normal();
  std::vector<int32_t> i32 = {-5, 0, 7, 2147483647};
  std::vector<uint8_t> u8 = {3, 200};
  SafetensorsWriter w;
  w.add_f32("model.embed_tokens.weight", {24, 16}, w1.data());
  w.add_f32("model.norm.weight", {16}, w2.data());
  w.add("steps", DType::I32, {2, 2}, i32.data());
  w.add("packed", DType::U8, {2}, u8.data());
  w.set_metadata("format", "pt");
  w.set_metadata("onebit", "test \"quoted\" ü");
  json ref;
  ref["metadata"] = {{"format", "pt"}, {"onebit", "test \"quoted\" ü"}};
  auto f32s = [](const std::vector<float>& v) {
    json a = json::array();
    for (float x : v) a.push_back(static_cast<double>(x));  // exact: a double holds any float
    return a;
  };
  ref["tensors"]["model.embed_tokens.weight"] = {{"dtype", "F32"}, {"shape", {24, 16}}, {"values", f32s(w1)}};
  ref["tensors"]["model.norm.weight"] = {{"dtype", "F32"}, {"shape", {16}}, {"values", f32s(w2)}};
  ref["tensors"]["steps"] = {{"dtype", "I32"}, {"shape", {2, 2}}, {"values", i32}};
  ref["tensors"]["packed"] = {{"dtype", "U8"}, {"shape", {2}}, {"values", u8}};
  fs::path d = temp_dir("py");
  w.write(d / "m.safetensors");
  write_json_atomic(d / "ref.json", ref);
  std::string cmd = cat(py, " ", ONEBIT_SOURCE_DIR, "/tools/check_safetensors.py check ", (d / "m.safetensors").string(),
                        " ", (d / "ref.json").string());
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  // And a deliberately wrong reference must be caught by the oracle (the check can fail).
  ref["tensors"]["steps"]["values"][1] = 1;
  write_json_atomic(d / "ref.json", ref);
  cmd += " > /dev/null";
  EXPECT_NE(std::system(cmd.c_str()), 0);
  fs::remove_all(d);
}

TEST(Safetensors, CorruptFilesGiveErrorsNamingFileAndTensor) {
  std::string good = read_file(kGolden);
  fs::path d = temp_dir("corrupt");
  const fs::path p = d / "bad.safetensors";

  write_file_atomic(p, good.substr(0, good.size() - 3));
  std::string e = error_of(p);
  EXPECT_NE(e.find(p.string()), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;

  write_file_atomic(p, good.substr(0, 5));
  EXPECT_NE(error_of(p).find("shorter than the 8-byte header"), std::string::npos);

  std::string big = good;
  uint64_t huge = 1ull << 40;
  std::memcpy(big.data(), &huge, 8);
  write_file_atomic(p, big);
  EXPECT_NE(error_of(p).find("corrupt safetensors header length"), std::string::npos);

  std::string badjson = good;
  badjson[8] = '#';
  write_file_atomic(p, badjson);
  EXPECT_NE(error_of(p).find("corrupt safetensors header"), std::string::npos);

  // A shape that does not match its byte range names the tensor.
  std::string badshape = good;
  size_t pos = badshape.find("\"shape\":[2,3]");
  ASSERT_NE(pos, std::string::npos);
  badshape.replace(pos, 13, "\"shape\":[3,3]");
  write_file_atomic(p, badshape);
  e = error_of(p);
  EXPECT_NE(e.find("tensor \"weight\""), std::string::npos) << e;

  std::string baddtype = good;
  pos = baddtype.find("\"I64\"");
  baddtype.replace(pos, 5, "\"Q64\"");
  write_file_atomic(p, baddtype);
  e = error_of(p);
  EXPECT_NE(e.find("unsupported safetensors dtype \"Q64\""), std::string::npos) << e;
  EXPECT_NE(e.find("tensor \"ids\""), std::string::npos) << e;

  // Reading with the wrong expected shape names the tensor.
  SafetensorsFile f(kGolden);
  std::vector<float> out(6);
  try {
    f.read_f32("weight", {3, 2}, out);
    ADD_FAILURE() << "shape mismatch not detected";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("tensor \"weight\": shape [2, 3] does not match"), std::string::npos)
        << err.what();
  }
  EXPECT_THROW(f.info("nope"), Error);
  fs::remove_all(d);
}

namespace {

// A safetensors file from a raw header text and a data region, for malformed headers the writer
// cannot produce.
void write_raw(const fs::path& p, const std::string& header, size_t data_bytes, uint64_t declared_len = UINT64_MAX) {
  const uint64_t n = declared_len == UINT64_MAX ? header.size() : declared_len;
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  out += header;
  out.append(data_bytes, '\x01');
  write_file_atomic(p, out);
}

void expect_error(const fs::path& p, const std::vector<std::string>& parts) {
  const std::string e = error_of(p);
  ASSERT_FALSE(e.empty()) << "no error for a malformed file";
  EXPECT_NE(e.find(p.string()), std::string::npos) << e;
  for (const auto& part : parts) EXPECT_NE(e.find(part), std::string::npos) << "missing \"" << part << "\" in: " << e;
}

}  // namespace

TEST(Safetensors, MalformedHeadersAreRejected) {
  fs::path d = temp_dir("malformed");
  const fs::path p = d / "bad.safetensors";
  const std::string a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string b = R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})";

  // The well-formed base case opens, so each failure below is due to its one change.
  write_raw(p, "{" + a + "," + b + "}", 16);
  EXPECT_EQ(error_of(p), "");

  // Header length larger than the file (but under the 100 MB guard).
  write_raw(p, "{" + a + "}", 8, 4096);
  expect_error(p, {"corrupt safetensors header length 4096"});

  // Not an object; not UTF-8.
  write_raw(p, "[1,2,3]", 0);
  expect_error(p, {"not a JSON object"});
  write_raw(p, "{\"\xff\xfe\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0);
  expect_error(p, {"corrupt safetensors header"});

  // The same tensor name twice (nlohmann would silently keep the last).
  write_raw(p, "{" + a + "," + R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})" + "}", 16);
  expect_error(p, {"\"a\" appears twice"});

  // Overlapping ranges, a gap, and a range past the end.
  write_raw(p, "{" + a + "," + R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})" + "}", 12);
  expect_error(p, {"tensor \"b\"", "gap or overlap"});
  write_raw(p, "{" + a + "," + R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]})" + "}", 20);
  expect_error(p, {"tensor \"b\"", "gap or overlap"});
  write_raw(p, "{" + a + "," + b + "}", 12);
  expect_error(p, {"tensor \"b\"", "run past the end"});
  write_raw(p, "{" + a + "}", 12);
  expect_error(p, {"trailing bytes"});

  // dtype x shape disagreeing with the byte range; a byte count that would wrap around 2^64.
  write_raw(p, R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", 8);
  expect_error(p, {"tensor \"a\"", "needs 16"});
  write_raw(p, R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", 0);
  expect_error(p, {"tensor \"a\"", "overflows"});

  // Shapes and offsets must be non-negative integers (no silent 2.5 -> 2 or -1 -> 2^64-1).
  write_raw(p, R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8);
  expect_error(p, {"tensor \"a\"", "\"shape\" must be an array of non-negative integers"});
  write_raw(p, R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8);
  expect_error(p, {"tensor \"a\"", "\"shape\""});
  write_raw(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8);
  expect_error(p, {"tensor \"a\"", "\"data_offsets\""});
  write_raw(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8);
  expect_error(p, {"tensor \"a\"", "data_offsets must be [begin, end]"});
  write_raw(p, R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8);
  expect_error(p, {"tensor \"a\"", "missing key \"shape\""});

  // The writer refuses what the reader would reject.
  SafetensorsWriter w;
  float x = 1.0f;
  EXPECT_THROW(w.add("big", DType::F32, {int64_t(1) << 62, 4}, &x), Error);
  EXPECT_THROW(w.add("nodata", DType::F32, {2}, nullptr), Error);
  EXPECT_THROW(w.add("neg", DType::F32, {-1}, &x), Error);
  w.add("ok", DType::F32, {1}, &x);
  EXPECT_THROW(w.add("ok", DType::F32, {1}, &x), Error);
  EXPECT_THROW(w.add("__metadata__", DType::F32, {1}, &x), Error);

  // __metadata__ must map strings to strings.
  write_raw(p, R"({"__metadata__":{"k":1}})", 0);
  expect_error(p, {"__metadata__ value \"k\""});
  fs::remove_all(d);
}
