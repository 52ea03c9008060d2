// Unsupported components and malformed files fail with one line naming the component and file.
#include <gtest/gtest.h>

#include "onebit/data/hf/hf_tokenizer.h"
#include "test_util.h"

namespace onebit::data {
namespace {

// A minimal valid BPE tokenizer.json with one component replaced.
std::string with(const std::string& key, const json& value) {
  json j = {{"version", "1.0"},
            {"added_tokens", json::array()},
            {"normalizer", nullptr},
            {"pre_tokenizer", nullptr},
            {"post_processor", nullptr},
            {"decoder", nullptr},
            {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}}};
  j[key] = value;
  return j.dump();
}

std::string error_of(const std::string& text) {
  try {
    parse_hf_tokenizer(text, "/models/x/tokenizer.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HfErrors, UnsupportedComponentsNameTypeAndFile) {
  struct Case {
    std::string key;
    json value;
    std::string names;
  } cases[] = {
      {"normalizer", {{"type", "BertNormalizer"}}, "BertNormalizer"},
      {"pre_tokenizer", {{"type", "UnicodeScripts"}}, "UnicodeScripts"},
      {"decoder", {{"type", "CTC"}}, "CTC"},
      {"post_processor", {{"type", "Mystery"}}, "Mystery"},
      {"model", {{"type", "Unigram"}, {"vocab", json::array()}}, "Unigram"},
      {"model", {{"type", "WordPiece"}, {"vocab", json::object()}}, "WordPiece"},
  };
  for (const auto& c : cases) {
    std::string msg = error_of(with(c.key, c.value));
    EXPECT_NE(msg.find(c.names), std::string::npos) << msg;
    EXPECT_NE(msg.find("/models/x/tokenizer.json"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(HfErrors, BadModelContents) {
  std::string msg = error_of(with("model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", {"a b"}}}));
  EXPECT_NE(msg.find("\"b\" is not in the vocab"), std::string::npos) << msg;
  msg = error_of(with("model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", {"ab"}}}));
  EXPECT_NE(msg.find("merges[0]"), std::string::npos) << msg;
  msg = error_of(with("pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}}));
  EXPECT_NE(msg.find("(unclosed"), std::string::npos) << msg;
  msg = error_of(with("pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}}));
  EXPECT_NE(msg.find("Sideways"), std::string::npos) << msg;
  msg = error_of("{not json");
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
  EXPECT_THROW(load_hf_tokenizer("/nonexistent/tokenizer.json"), Error);
}

// Files that are not a tokenizer at all: one line naming the file and what is wrong.
TEST(HfErrors, NotATokenizerNamesTheFileOnOneLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"{not json", "not valid JSON"}, {"", "not valid JSON"},        {"[1, 2]", "must be a JSON object"},
      {"{\"a\": 1}", "\"model\""},    {"{\"model\": 3}", "model"},   {"{\"model\": {\"type\": \"BPE\"}}", "vocab"},
  };
  for (const auto& [text, what] : cases) {
    std::string msg = error_of(text);
    EXPECT_EQ(msg.rfind("/models/x/tokenizer.json", 0), 0u) << text << " → " << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << text << " → " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  try {
    load_hf_tokenizer("/nonexistent/tokenizer.json");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json"), std::string::npos) << e.what();
  }
}

TEST(HfErrors, MergesAsPairsEqualMergesAsStrings) {
  json pairs = {{"type", "BPE"},
                {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}},
                {"merges", json::array({json::array({"a", "b"})})}};
  auto as_pairs = parse_hf_tokenizer(with("model", pairs), "pairs");
  auto as_strings = parse_hf_tokenizer(with("decoder", nullptr), "strings");
  for (const char* text : {"abab", "aba", "bba"}) EXPECT_EQ(as_pairs->encode(text), as_strings->encode(text)) << text;
  EXPECT_EQ(as_pairs->encode("aba"), (std::vector<int32_t>{2, 0}));
}

}  // namespace
}  // namespace onebit::data
