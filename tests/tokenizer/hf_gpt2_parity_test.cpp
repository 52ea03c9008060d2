// GPT-2's tokenizer.json against ids from HF `tokenizers` (shared/data/tokenizers/gpt2/cases.jsonl),
// and the built-in byte tokenizer's own tokenizer.json loaded back through the HF loader.
#include <gtest/gtest.h>

#include "onebit/data/byte_tokenizer.h"
#include "onebit/data/hf/hf_tokenizer.h"
#include "test_util.h"

namespace onebit::data {
namespace {

fs::path gpt2_dir() { return test::gpt2_fixture_dir(); }

TEST(HfGpt2, MatchesAllCasesFromHfTokenizers) {
  ASSERT_TRUE(fs::exists(gpt2_dir() / "cases.jsonl")) << gpt2_dir() << " is missing";
  auto tok = load_hf_tokenizer(gpt2_dir() / "tokenizer.json");
  auto rows = test::read_jsonl(gpt2_dir() / "cases.jsonl");
  ASSERT_EQ(rows.size(), 46u);
  int matched = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string text = rows[i]["text"];
    auto want = rows[i]["ids"].get<std::vector<int32_t>>();
    auto got = tok->encode(text);
    if (got == want) ++matched;
    else ADD_FAILURE() << "case " << i << ": " << test::first_difference(got, want);
    // GPT-2 is byte-level, hence lossless on valid UTF-8.
    EXPECT_EQ(tok->decode(got), text) << "case " << i;
  }
  EXPECT_EQ(matched, 46);
}

TEST(HfGpt2, BatchEncodeEqualsSingleEncode) {
  auto tok = load_hf_tokenizer(gpt2_dir() / "tokenizer.json");
  auto rows = test::read_jsonl(gpt2_dir() / "cases.jsonl");
  std::vector<std::string> texts;
  for (const auto& r : rows) texts.push_back(r["text"]);
  std::vector<std::string_view> views(texts.begin(), texts.end());
  auto batch = tok->encode_batch(views, false, 2);
  ASSERT_EQ(batch.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(batch[i], rows[i]["ids"].get<std::vector<int32_t>>()) << i;
}

TEST(HfGpt2, MetadataAndSpecials) {
  auto tok = load_hf_tokenizer(gpt2_dir() / "tokenizer.json");
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_EQ(tok->id_to_piece(50256), "<|endoftext|>");
  EXPECT_EQ(tok->id_to_piece(220), " ");  // "Ġ" shown as the byte it stands for
  std::vector<int32_t> ids = {15496, 50256, 995};
  EXPECT_EQ(tok->decode(ids), "Hello<|endoftext|> world");
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), "Hello world");
  EXPECT_THROW(tok->decode(std::vector<int32_t>{50257}), Error);
}

TEST(HfGpt2, InvalidUtf8IsReplacedLikePython) {
  auto tok = load_hf_tokenizer(gpt2_dir() / "tokenizer.json");
  // b"ab\xff\xe2\x82cd\xed\xa0\x80".decode("utf-8", "replace") == "ab\ufffd\ufffdcd\ufffd\ufffd\ufffd"
  EXPECT_EQ(tok->encode("ab\xff\xe2\x82" "cd\xed\xa0\x80"),
            tok->encode("ab\xEF\xBF\xBD\xEF\xBF\xBD" "cd\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));
}

TEST(HfByteTokenizerJson, LoadsWithIdenticalIds) {
  auto byte = make_byte_tokenizer();
  auto hf = parse_hf_tokenizer(byte->to_json(), "byte tokenizer.json");
  EXPECT_EQ(hf->vocab_size(), byte->vocab_size());
  EXPECT_EQ(hf->eos_id(), byte->eos_id());
  EXPECT_EQ(hf->hash(), byte->hash());
  const std::string texts[] = {"", "hello world", "日本語 😀 naïve\t\n  x", "a<|endoftext|>b<|endoftext|>",
                               std::string("\0\x01\x7f", 3)};
  for (const auto& t : texts) {
    EXPECT_EQ(hf->encode(t), byte->encode(t)) << t;
    EXPECT_EQ(hf->decode(hf->encode(t)), t);
  }
  // Every byte value, invalid UTF-8 included: a pure byte-level pipeline keeps raw bytes.
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  all += "\xC2\x80\xDF\xBF\xEF\xBF\xBF\xF4\x8F\xBF\xBF\xF0\x9F";
  EXPECT_EQ(hf->encode(all), byte->encode(all));
  EXPECT_EQ(hf->decode(hf->encode(all)), byte->decode(byte->encode(all)));
}

}  // namespace
}  // namespace onebit::data
