// The PCRE2 layer: Oniguruma-compatible shorthand classes, HF find_iter semantics, long inputs.
#include <gtest/gtest.h>

#include "onebit/core/error.h"
#include "onebit/data/hf/regex.h"

namespace onebit::data::hf {
namespace {

std::vector<std::string> find(const std::string& onig_pattern, const std::string& text) {
  Regex re(onig_to_pcre2(onig_pattern), "test");
  std::vector<Match> m;
  re.find_all(text, m);
  std::vector<std::string> out;
  for (const auto& x : m) out.push_back(text.substr(x.start, x.end - x.start));
  return out;
}

TEST(HfRegex, WordClassTakesCombiningMarksLikeOniguruma) {
  // "e" + U+0301 COMBINING ACUTE is one word for Oniguruma; plain PCRE2 10.42 \w would stop at the mark.
  EXPECT_EQ(find(R"(\w+)", "cafe\xCC\x81 x_1"), (std::vector<std::string>{"cafe\xCC\x81", "x_1"}));
  EXPECT_EQ(find(R"([\w-]+)", "a-b c"), (std::vector<std::string>{"a-b", "c"}));
  EXPECT_EQ(find(R"(\W+)", "ab, cd"), (std::vector<std::string>{", "}));
}

TEST(HfRegex, SpaceClassTakesNextLine) {
  EXPECT_EQ(find(R"(\s+)", "a\xC2\x85\tb"), (std::vector<std::string>{"\xC2\x85\t"}));
  EXPECT_EQ(find(R"(\S+)", "a\xC2\x85" "b"), (std::vector<std::string>{"a", "b"}));
}

TEST(HfRegex, RewriteLeavesEscapesAndPosixClassesAlone) {
  EXPECT_EQ(onig_to_pcre2(R"(\\w)"), R"(\\w)");
  EXPECT_EQ(onig_to_pcre2(R"([[:alpha:]\s])"), R"([[:alpha:]\s\x{85}])");
  EXPECT_EQ(onig_to_pcre2(R"([]\w])"), R"([]\p{L}\p{M}\p{Nd}\p{Pc}])");
}

TEST(HfRegex, EmptyMatchesAdvanceOneCharacter) {
  // Like Oniguruma's find_iter: an empty match at every position, characters not bytes.
  Regex re("x*", "test");
  std::vector<Match> m;
  re.find_all("a\xC3\xA9", m);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].start, 0u);
  EXPECT_EQ(m[1].start, 1u);
  EXPECT_EQ(m[2].start, 3u);
}

TEST(HfRegex, EscapedLiteralMatchesItselfOnly) {
  Regex re(regex_escape("a.b*(c)"), "test");
  std::vector<Match> m;
  re.find_all("axbbc a.b*(c)", m);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].start, 6u);
}

TEST(HfRegex, LongWhitespaceRunWithLookahead) {
  // GPT-2's \s+(?!\S) backtracks over the whole run; 2 MB of spaces must not hit a stack limit.
  std::string text(2 << 20, ' ');
  text += "x";
  auto parts = find(R"(\s+(?!\S)|\s+|\S+)", text);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].size(), (2u << 20) - 1);
  EXPECT_EQ(parts[1], " ");
  EXPECT_EQ(parts[2], "x");
}

TEST(HfRegex, BadPatternNamesItself) {
  try {
    Regex re("(a", "tok.json: pre_tokenizer Split");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tok.json: pre_tokenizer Split: regex /(a/"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace onebit::data::hf
