// One small tokenizer per component setting (every Split behaviour, inverted splits, Digits,
// Punctuation, Whitespace, Metaspace schemes, normalizers, prefix/suffix BPE, unk fusing, added
// tokens with lstrip/rstrip/single_word/normalized), built with HF `tokenizers`; ids with and
// without the post-processor and both decodes must equal HF's on edge-case texts.
#include <gtest/gtest.h>

#include "onebit/data/hf/hf_tokenizer.h"
#include "test_util.h"

namespace onebit::data {
namespace {

class HfZoo : public ::testing::TestWithParam<std::string> {};

TEST_P(HfZoo, MatchesHf) {
  fs::path dir = test::fixtures_dir() / "zoo" / GetParam();
  auto tok = load_hf_tokenizer(dir / "tokenizer.json");
  auto rows = test::read_jsonl(dir / "cases.jsonl");
  ASSERT_GE(rows.size(), 40u);
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& r = rows[i];
    std::string text = r["text"];
    auto want = r["ids"].get<std::vector<int32_t>>();
    auto want_special = r["ids_special"].get<std::vector<int32_t>>();
    auto got = tok->encode(text);
    EXPECT_EQ(got, want) << "case " << i << " " << r["text"].dump() << ": " << test::first_difference(got, want);
    EXPECT_EQ(tok->encode(text, true), want_special) << "case " << i;
    EXPECT_EQ(tok->decode(want), r["decoded"].get<std::string>()) << "case " << i;
    EXPECT_EQ(tok->decode(want_special, true), r["decoded_skip"].get<std::string>()) << "case " << i;
  }
}

std::vector<std::string> zoo_names() {
  json names = read_json_file(test::fixtures_dir() / "zoo" / "index.json");
  return names.get<std::vector<std::string>>();
}

INSTANTIATE_TEST_SUITE_P(Components, HfZoo, ::testing::ValuesIn(zoo_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace onebit::data
