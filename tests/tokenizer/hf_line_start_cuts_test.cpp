// Tokenizer::encodes_line_start_cuts_independently() lets document readers tokenize big text files
// in pieces cut at line starts. A "true" must be backed by the ids: for every tokenizer that claims
// it, encoding the two sides of every line start cut of a tricky text must give the whole text's
// ids; the tokenizers whose pipelines depend on position (Metaspace "first", Prepend, no
// pre-tokenizer) must say false, and at least one of them must really differ at such a cut, so the
// check above is not vacuous.
#include <gtest/gtest.h>

#include "onebit/data/byte_tokenizer.h"
#include "onebit/data/hf/hf_tokenizer.h"
#include "onebit/data/tokenizer.h"
#include "test_util.h"

namespace onebit::data {
namespace {

// Every kind of line ending the cut rule must get right, around each kind of character.
std::string tricky_text() {
  const char* lines[] = {"Hello world.", "", "First Citizen:", "  indented line", "x = 42;", "tail space ",
                         "naïve café ☃", "UPPER lower", "", "", "it's 'quoted'", "\ttabbed", "end\r", "1234567",
                         "Zebra!", "a", "-", "Über", " ", "k", "<|endoftext|>", "after eot", "A\u3000", "B"};
  std::string s;
  for (int rep = 0; rep < 3; ++rep)
    for (const char* l : lines) {
      s += l;
      s += '\n';
    }
  return s;
}

// The cut positions of `text` and whether each encodes piecewise.
std::vector<std::pair<size_t, bool>> check_cuts(const Tokenizer& tok, const std::string& text) {
  const auto whole = tok.encode(text);
  std::vector<std::pair<size_t, bool>> out;
  for (size_t p = 0; p < text.size(); ++p) {
    if (!is_line_start_cut(text, p)) continue;
    auto ids = tok.encode(std::string_view(text).substr(0, p));
    auto right = tok.encode(std::string_view(text).substr(p));
    ids.insert(ids.end(), right.begin(), right.end());
    out.emplace_back(p, ids == whole);
  }
  return out;
}

TEST(LineStartCuts, RuleAcceptsOnlyGraphicNewlineLetter) {
  EXPECT_TRUE(is_line_start_cut("a.\nB", 3));
  EXPECT_TRUE(is_line_start_cut("a\nb", 2));
  EXPECT_FALSE(is_line_start_cut("a\n\nB", 3));   // "\n\n" before a letter: GPT-2 splits it differently
  EXPECT_FALSE(is_line_start_cut("a \nB", 3));    // whitespace before the '\n'
  EXPECT_FALSE(is_line_start_cut("a.\n1", 3));    // not a letter after
  EXPECT_FALSE(is_line_start_cut("a.\n\xC3\x9C", 3));  // non-ASCII letter after
  EXPECT_FALSE(is_line_start_cut("\nB", 1));
  EXPECT_FALSE(is_line_start_cut("a.\n", 3));
}

struct Case {
  std::string name;
  fs::path file;  // empty: the byte tokenizer
  bool independent;
};

std::vector<Case> cases() {
  std::vector<Case> c = {
      {"byte", {}, true},
      {"llama3", test::fixtures_dir() / "llama3" / "tokenizer.json", true},
      {"llama-sp", test::fixtures_dir() / "llama-sp" / "tokenizer.json", false},
  };
  fs::path gpt2 = test::gpt2_fixture_dir() / "tokenizer.json";
  c.push_back({"gpt2", gpt2, true});
  // The zoo: what each pipeline may claim follows from its components (see pre_tokenizers.h).
  const std::pair<const char*, bool> zoo[] = {
      {"digits_whitespace", true},        // Whitespace drops the '\n', Digits then works per piece
      {"unk_fuse", true},                 // Whitespace: <unk> fusing stays inside one word
      {"unk_no_fuse", true},
      {"split_removed", false},           // a Split with a pattern nobody has checked
      {"split_isolated", false}, {"split_string", false}, {"split_invert_isolated", false},
      {"bytelevel_regex_prefix", false},  // add_prefix_space puts a space before every part
      {"bytelevel_noregex", false},       // one word: BPE may merge across the '\n'
      {"digits_contiguous_punct", true},   // WhitespaceSplit first, then per-piece steps
      {"punct_merged_next", false},
      {"bert_like", false},               // Strip and Replace normalizers
      {"nfc_prepend_replace", false},     // Prepend and Replace
      {"nfkd_strip_left", false},         // Strip
      {"metaspace_first_split", false},   // prepend_scheme "first"
      {"metaspace_never", false},         // no isolating step
      {"no_pretokenizer_no_decoder", false},
  };
  for (const auto& [name, independent] : zoo)
    c.push_back({name, test::fixtures_dir() / "zoo" / name / "tokenizer.json", independent});
  return c;
}

TEST(LineStartCuts, ClaimIsDerivedFromThePipelineAndHoldsAtEveryCut) {
  const std::string text = tricky_text();
  bool some_unsafe_differs = false;
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    std::unique_ptr<Tokenizer> tok = c.file.empty() ? make_byte_tokenizer() : load_tokenizer(c.file.string());
    EXPECT_EQ(tok->encodes_line_start_cuts_independently(), c.independent);
    auto cuts = check_cuts(*tok, text);
    ASSERT_GE(cuts.size(), 20u);
    for (const auto& [pos, same] : cuts) {
      if (tok->encodes_line_start_cuts_independently())
        EXPECT_TRUE(same) << "claims independence but differs at the cut at byte " << pos;
      else if (!same)
        some_unsafe_differs = true;
    }
  }
  EXPECT_TRUE(some_unsafe_differs) << "no tokenizer without the claim differs at a cut: the check proves nothing";
}

// GPT-2's ByteLevel regex pre-tokenizes "\n\n" at the end of a text as one piece but as two before
// a letter: the reason the cut rule wants a graphic character before the '\n'.
TEST(LineStartCuts, Gpt2DiffersAfterABlankLineSoThatIsNoCut) {
  fs::path gpt2 = test::gpt2_fixture_dir() / "tokenizer.json";
  auto tok = load_tokenizer(gpt2.string());
  auto ids = tok->encode("Hello.\n\n");
  auto right = tok->encode("World");
  ids.insert(ids.end(), right.begin(), right.end());
  EXPECT_NE(ids, tok->encode("Hello.\n\nWorld"));
  EXPECT_FALSE(is_line_start_cut("Hello.\n\nWorld", 8));
}

}  // namespace
}  // namespace onebit::data
