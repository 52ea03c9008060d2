#include <gtest/gtest.h>

#include <cstring>

#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/data/token_file.h"
#include "temp_dir.h"

namespace onebit::data {
namespace {

using testing::expect_error;
using testing::TempDir;

std::vector<int32_t> random_ids(size_t n, uint32_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = static_cast<int32_t>(rng.uniform_int(vocab));
  return v;
}

void write_tokens(const fs::path& p, const std::vector<int32_t>& ids, uint32_t vocab, uint64_t hash) {
  TokenFileWriter w(p, vocab, hash);
  // Several appends of uneven sizes, crossing the writer's flush threshold.
  size_t i = 0, step = 1;
  while (i < ids.size()) {
    size_t n = std::min(step, ids.size() - i);
    w.append(std::span<const int32_t>(ids.data() + i, n));
    i += n;
    step = step * 3 + 1;
  }
  EXPECT_EQ(w.count(), ids.size());
  w.commit();
}

TEST(TokenFile, RoundTripTwoByteIds) {
  TempDir dir;
  auto ids = random_ids(700001, 50257, 1);
  write_tokens(dir / "a.tokens", ids, 50257, 0x1234567890abcdefULL);
  EXPECT_EQ(fs::file_size(dir / "a.tokens"), 64 + 2 * ids.size());
  TokenFile f(dir / "a.tokens");
  EXPECT_EQ(f.header().token_bytes, 2u);
  EXPECT_EQ(f.header().vocab_size, 50257u);
  EXPECT_EQ(f.header().tokenizer_hash, 0x1234567890abcdefULL);
  ASSERT_EQ(f.size(), ids.size());
  std::vector<int32_t> back(ids.size());
  f.read(0, back.size(), back.data());
  EXPECT_EQ(back, ids);
  EXPECT_EQ(f.at(12345), ids[12345]);
  f.validate();
}

TEST(TokenFile, RoundTripFourByteIdsAndBoundaryVocab) {
  TempDir dir;
  auto ids = random_ids(10000, 128256, 2);
  ids[0] = 128255;
  write_tokens(dir / "b.tokens", ids, 128256, 7);
  TokenFile f(dir / "b.tokens");
  EXPECT_EQ(f.header().token_bytes, 4u);
  std::vector<int32_t> back(ids.size());
  f.read(0, back.size(), back.data());
  EXPECT_EQ(back, ids);
  // vocab 65536 still fits 16 bits (ids 0..65535).
  write_tokens(dir / "c.tokens", {0, 65535}, 65536, 0);
  TokenFile c(dir / "c.tokens");
  EXPECT_EQ(c.header().token_bytes, 2u);
  EXPECT_EQ(c.at(1), 65535);
}

TEST(TokenFile, HeaderBytesAreAsDocumented) {
  TempDir dir;
  write_tokens(dir / "h.tokens", {1, 2, 3}, 300, 0xfeedULL);
  std::string raw = read_file(dir / "h.tokens");
  ASSERT_EQ(raw.size(), 64u + 6u);
  EXPECT_EQ(raw.substr(0, 8), "OBTOKENS");
  uint32_t u32;
  uint64_t u64;
  std::memcpy(&u32, raw.data() + 8, 4);
  EXPECT_EQ(u32, 1u);
  std::memcpy(&u32, raw.data() + 12, 4);
  EXPECT_EQ(u32, 2u);
  std::memcpy(&u32, raw.data() + 16, 4);
  EXPECT_EQ(u32, 300u);
  std::memcpy(&u64, raw.data() + 24, 8);
  EXPECT_EQ(u64, 3u);
  std::memcpy(&u64, raw.data() + 32, 8);
  EXPECT_EQ(u64, 0xfeedULL);
  EXPECT_EQ(static_cast<uint8_t>(raw[64]), 1);
  EXPECT_EQ(static_cast<uint8_t>(raw[65]), 0);
}

TEST(TokenFile, WriterRejectsOutOfRangeIdsAndLeavesNoFile) {
  TempDir dir;
  auto p = dir / "bad.tokens";
  {
    TokenFileWriter w(p, 257, 0);
    std::vector<int32_t> ok = {0, 256}, big = {1, 257}, neg = {-1};
    w.append(ok);
    expect_error([&] { w.append(big); }, p.string(), "257", "out of range");
    expect_error([&] { w.append(neg); }, p.string(), "-1");
  }  // never committed
  EXPECT_FALSE(fs::exists(p));
  for (auto& e : fs::directory_iterator(dir.path())) ADD_FAILURE() << "left behind: " << e.path();
}

TEST(TokenFile, ReaderErrorsNameTheFile) {
  TempDir dir;
  write_tokens(dir / "good.tokens", {1, 2, 3, 4}, 1000, 9);
  std::string good = read_file(dir / "good.tokens");

  auto write_raw = [&](const std::string& name, std::string bytes) {
    write_file_atomic(dir / name, bytes);
    return dir / name;
  };
  auto p = write_raw("short.tokens", "OBTOK");
  expect_error([&] { TokenFile f(p); }, p.string(), "shorter than the 64-byte header");

  std::string bad_magic = good;
  bad_magic[0] = 'X';
  p = write_raw("magic.tokens", bad_magic);
  expect_error([&] { TokenFile f(p); }, p.string(), "bad magic");

  p = write_raw("trunc.tokens", good.substr(0, good.size() - 1));
  expect_error([&] { TokenFile f(p); }, p.string(), "truncated");
  p = write_raw("long.tokens", good + "xx");
  expect_error([&] { TokenFile f(p); }, p.string(), "truncated");

  std::string width = good;
  width[12] = 4;  // vocab 1000 must be 2-byte
  p = write_raw("width.tokens", width);
  expect_error([&] { TokenFile f(p); }, p.string(), "does not match vocab size");
  width[12] = 3;
  p = write_raw("width3.tokens", width);
  expect_error([&] { TokenFile f(p); }, p.string(), "must be 2 or 4");

  std::string version = good;
  version[8] = 2;
  p = write_raw("version.tokens", version);
  expect_error([&] { TokenFile f(p); }, p.string(), "version 2");

  std::string huge_count = good;
  huge_count[31] = 0x7f;  // count near 2^63: must not overflow the size check
  p = write_raw("count.tokens", huge_count);
  expect_error([&] { TokenFile f(p); }, p.string(), "truncated");

  std::string out_of_range = good;
  out_of_range[64 + 2 * 2] = static_cast<char>(0xE8);  // token 2 = 1000 (0x03E8) >= vocab 1000
  out_of_range[64 + 2 * 2 + 1] = 0x03;
  p = write_raw("range.tokens", out_of_range);
  TokenFile f(p);
  EXPECT_EQ(f.at(1), 2);
  expect_error([&] { f.at(2); }, p.string(), "token 2", "1000");
  expect_error([&] { f.validate(); }, p.string(), "out of range");
  expect_error([&] { f.at(4); }, p.string(), "past the end");

  expect_error([&] { TokenFile missing(dir / "missing.tokens"); }, "missing.tokens");
}

}  // namespace
}  // namespace onebit::data
