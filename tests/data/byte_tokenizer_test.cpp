#include <gtest/gtest.h>

#include <fstream>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/data/byte_level.h"
#include "onebit/data/byte_tokenizer.h"
#include "hf_oracle.h"
#include "oracle_python.h"
#include "temp_dir.h"
#include "test_seed.h"

namespace onebit::data {
namespace {

using testing::expect_error;
using testing::TempDir;

const fs::path kFixtures = fs::path(ONEBIT_TEST_FIXTURES) / "data";

std::vector<json> load_cases() {
  std::ifstream in(kFixtures / "byte_tokenizer_cases.jsonl");
  std::vector<json> cases;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) cases.push_back(json::parse(line));
  return cases;
}

TEST(ByteLevel, AlphabetIsGpt2BytesToUnicode) {
  // Spot values from GPT-2's table: printable ASCII maps to itself, space to U+0120 ("Ġ"),
  // newline to U+010A ("Ċ"), 0xAD (soft hyphen) to U+0143.
  EXPECT_EQ(byte_to_unicode('A'), U'A');
  EXPECT_EQ(byte_to_unicode(' '), char32_t(0x120));
  EXPECT_EQ(byte_to_unicode('\n'), char32_t(0x10A));
  EXPECT_EQ(byte_to_unicode(0xAD), char32_t(0x143));
  EXPECT_EQ(byte_to_unicode(0), char32_t(0x100));
  for (int b = 0; b < 256; ++b) EXPECT_EQ(unicode_to_byte(byte_to_unicode(static_cast<uint8_t>(b))), b);
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string back;
  ASSERT_TRUE(symbols_to_bytes(bytes_to_symbols(all), back));
  EXPECT_EQ(back, all);
  EXPECT_FALSE(symbols_to_bytes("\xe2\x82\xac", back));  // U+20AC is not a byte symbol
}

TEST(ByteTokenizer, MatchesHuggingFaceTokenizersOnFixtureTexts) {
  auto tok = make_byte_tokenizer();
  auto cases = load_cases();
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    std::string text = c["text"];
    std::vector<int32_t> want = c["ids"];
    EXPECT_EQ(tok->encode(text), want) << text;
    EXPECT_EQ(tok->decode(want), c["decoded"].get<std::string>()) << text;
  }
}

// Live: Hugging Face loads the tokenizer.json onebit writes now (not the committed copy) and encodes
// and decodes the fixture texts and fresh random ones exactly as onebit does.
TEST(ByteTokenizer, HuggingFaceLoadsItsJsonAndEncodesLikeOnebit) {
  ONEBIT_ORACLE_PYTHON_OR_SKIP(python);
  TempDir dir;
  auto tok = make_byte_tokenizer();
  write_file_atomic(dir / "tokenizer.json", tok->to_json());
  std::vector<std::string> texts;
  for (const auto& c : load_cases()) texts.push_back(c["text"]);
  Rng rng(onebit::test::test_seed());
  for (int i = 0; i < 200; ++i) texts.push_back(testing::random_text(rng, 1 + rng.uniform_int(40)));
  testing::expect_encodes_like_hugging_face(python, *tok, dir / "tokenizer.json", texts, dir.path());
}

TEST(ByteTokenizer, VocabSpecialsAndDecodeSkip) {
  auto tok = make_byte_tokenizer();
  EXPECT_EQ(tok->vocab_size(), 257);
  EXPECT_EQ(tok->eos_id(), std::optional<int32_t>(256));
  EXPECT_FALSE(tok->bos_id().has_value());
  std::vector<int32_t> ids = tok->encode("a<|endoftext|>b");
  EXPECT_EQ(ids, (std::vector<int32_t>{'a', 256, 'b'}));
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), "ab");
  EXPECT_EQ(tok->id_to_piece(256), "<|endoftext|>");
  EXPECT_EQ(tok->id_to_piece('x'), "x");
  std::vector<int32_t> bad = {5, 257};
  expect_error([&] { tok->decode(bad); }, "257", "out of range");
  expect_error([&] { tok->id_to_piece(-1); }, "-1");
}

TEST(ByteTokenizer, JsonIsTheCommittedFixtureAndHashIsCanonical) {
  auto tok = make_byte_tokenizer();
  json mine = json::parse(tok->to_json());
  json fixture = read_json_file(kFixtures / "byte_tokenizer.json");
  EXPECT_EQ(mine, fixture);
  EXPECT_EQ(tok->hash(), tokenizer_json_hash(fixture));
  // The hash ignores formatting: the compact dump hashes the same.
  EXPECT_EQ(tokenizer_json_hash(json::parse(fixture.dump())), tok->hash());
  // ... but not content.
  fixture["added_tokens"][0]["content"] = "<|eot|>";
  EXPECT_NE(tokenizer_json_hash(fixture), tok->hash());
}

TEST(Tokenizer, Fnv1a64KnownValues) {
  // Reference values of 64-bit FNV-1a.
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
  EXPECT_EQ(hash_hex(0xabcULL), "0000000000000abc");
}

TEST(Tokenizer, LoadTokenizerSpecs) {
  auto tok = load_tokenizer("byte");
  EXPECT_EQ(tok->vocab_size(), 257);
  expect_error([] { load_tokenizer("/nonexistent/tokenizer.json"); }, "/nonexistent/tokenizer.json", "no such tokenizer");
  TempDir dir;
  expect_error([&] { load_tokenizer(dir.path().string()); }, dir.path().string(), "no tokenizer.json");
}

#ifdef ONEBIT_HAVE_HF_TOKENIZER
TEST(Tokenizer, ByteTokenizerJsonReloadsThroughHfLoaderWithSameHashAndIds) {
  auto byte = make_byte_tokenizer();
  TempDir dir;
  write_file_atomic(dir / "tokenizer.json", byte->to_json());
  auto hf = load_tokenizer(dir.path().string());
  EXPECT_EQ(hf->hash(), byte->hash());
  EXPECT_EQ(hf->vocab_size(), byte->vocab_size());
  EXPECT_EQ(hf->eos_id(), std::optional<int32_t>(256));
  for (const auto& c : load_cases()) {
    std::string text = c["text"];
    EXPECT_EQ(hf->encode(text), byte->encode(text)) << text;
  }
}
#endif

}  // namespace
}  // namespace onebit::data
