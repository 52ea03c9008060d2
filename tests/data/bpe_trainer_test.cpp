#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "onebit/data/bpe_trainer.h"
#include "onebit/data/tokenizer.h"
#include "hf_oracle.h"
#include "oracle_python.h"
#include "temp_dir.h"
#include "test_seed.h"
#ifdef ONEBIT_HAVE_HF_TOKENIZER
#include "onebit/data/hf/hf_tokenizer.h"
#endif

namespace onebit::data {
namespace {

using onebit::test::test_seed;
using testing::expect_error;
using testing::TempDir;

const fs::path kFixtures = fs::path(ONEBIT_TEST_FIXTURES) / "data";

// GPT-2's bytes_to_unicode order (its vocab.json's first 256 entries): the printable bytes, then the
// others in byte order. Hugging Face's BpeTrainer numbers its alphabet so and breaks count ties by id.
std::vector<uint8_t> gpt2_byte_order() {
  std::vector<uint8_t> order, rest;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    (printable ? order : rest).push_back(static_cast<uint8_t>(b));
  }
  order.insert(order.end(), rest.begin(), rest.end());
  return order;
}

// The obvious BPE: recount every pair of every word before each merge; ties go to the smallest id pair.
BpeMerges naive_bpe(const std::vector<std::pair<std::string, uint64_t>>& words, uint64_t max_merges, uint64_t min_freq) {
  std::vector<std::string> str(256);
  std::map<std::string, uint32_t> id;
  const std::vector<uint8_t> order = gpt2_byte_order();
  for (uint32_t i = 0; i < 256; ++i) {
    str[i] = std::string(1, static_cast<char>(order[i]));
    id[str[i]] = i;
  }
  std::vector<std::pair<std::vector<uint32_t>, uint64_t>> ws;
  for (const auto& [w, c] : words) {
    std::vector<uint32_t> s;
    for (char ch : w) s.push_back(id.at(std::string(1, ch)));
    ws.emplace_back(s, c);
  }
  BpeMerges out;
  while (out.merges.size() < max_merges) {
    std::map<std::pair<uint32_t, uint32_t>, uint64_t> counts;
    for (const auto& [s, c] : ws)
      for (size_t i = 0; i + 1 < s.size(); ++i) counts[{s[i], s[i + 1]}] += c;
    if (counts.empty()) break;
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it)
      if (it->second > best->second) best = it;  // map order = smallest pair first among ties
    if (best->second < min_freq) {
      out.stopped_by_min_frequency = true;
      break;
    }
    auto [a, b] = best->first;
    std::string m = str[a] + str[b];
    uint32_t nid;
    if (id.count(m)) {
      nid = id[m];
    } else {
      nid = static_cast<uint32_t>(str.size());
      str.push_back(m);
      id[m] = nid;
    }
    out.merges.emplace_back(str[a], str[b]);
    for (auto& [s, c] : ws) {
      std::vector<uint32_t> t;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          t.push_back(nid);
          i += 2;
        } else {
          t.push_back(s[i++]);
        }
      }
      s = t;
    }
  }
  return out;
}

TEST(BpeTrainer, IncrementalMergesMatchRecountingFromScratch) {
  for (uint64_t salt : {1, 2, 3}) {
    const uint64_t seed = test_seed(salt);
    Rng rng(seed);
    std::vector<std::pair<std::string, uint64_t>> words;
    // Small alphabets force repeated symbols ("aaaa"), overlapping pairs and equal counts (ties); the
    // space and 0xC3 sort differently by byte value and by GPT-2 symbol, so ties between them test the order.
    const std::string alphabet = salt == 3 ? "ab" : "ab \xc3";
    for (int i = 0; i < 300; ++i) {
      std::string w;
      size_t len = 1 + rng.uniform_int(9);
      for (size_t k = 0; k < len; ++k) w += alphabet[rng.uniform_int(alphabet.size())];
      words.emplace_back(w, 1 + rng.uniform_int(5));
    }
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end(), [](auto& x, auto& y) { return x.first == y.first; }), words.end());
    BpeMerges fast = learn_bpe_merges(words, 150, 2);
    BpeMerges slow = naive_bpe(words, 150, 2);
    ASSERT_GT(fast.merges.size(), 20u);
    EXPECT_EQ(fast.merges, slow.merges) << "salt " << salt;
    EXPECT_EQ(fast.stopped_by_min_frequency, slow.stopped_by_min_frequency);
  }
}

TEST(BpeTrainer, TiesGoToTheSmallestPairInGpt2SymbolOrder) {
  // ' ' is byte 0x20 but symbol U+0120 (after every printable ASCII symbol): ("x","y") wins the tie.
  std::vector<std::pair<std::string, uint64_t>> words = {{" a", 3}, {"xy", 3}};
  BpeMerges m = learn_bpe_merges(words, 1, 2);
  ASSERT_EQ(m.merges.size(), 1u);
  EXPECT_EQ(m.merges[0], (std::pair<std::string, std::string>{"x", "y"}));
}

TEST(BpeTrainer, MinFrequencyAndTieBreak) {
  // "ab" ×3 and "cd" ×3 tie: the smaller pair ('a','b') merges first; "ef" ×1 never reaches 2.
  std::vector<std::pair<std::string, uint64_t>> words = {{"cd", 3}, {"ab", 3}, {"ef", 1}};
  BpeMerges m = learn_bpe_merges(words, 10, 2);
  ASSERT_EQ(m.merges.size(), 2u);
  EXPECT_EQ(m.merges[0], (std::pair<std::string, std::string>{"a", "b"}));
  EXPECT_EQ(m.merges[1], (std::pair<std::string, std::string>{"c", "d"}));
  EXPECT_TRUE(m.stopped_by_min_frequency);
  EXPECT_EQ(learn_bpe_merges(words, 10, 1).merges.size(), 3u);
}

std::vector<json> load_cases() {
  std::ifstream in(kFixtures / "bpe_trainer_cases.jsonl");
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

BpeTrainOptions fixture_options(const std::string& pattern, int threads) {
  BpeTrainOptions o;
  o.inputs = {(kFixtures / "bpe_corpus.txt").string()};
  o.vocab_size = 600;
  o.min_frequency = 2;
  o.pattern = pattern;
  o.threads = threads;
  o.progress = false;
  return o;
}

TEST(BpeTrainer, TrainingIsDeterministicAndMatchesTheCommittedFixture) {
  for (const std::string pattern : {"gpt2", "llama3"}) {
    json want = read_json_file(kFixtures / ("bpe_trained_" + pattern + ".json"));
    for (int threads : {1, 2}) {
      BpeTrainResult r = train_bpe(fixture_options(pattern, threads));
      EXPECT_EQ(r.vocab_size, 600u);
      EXPECT_EQ(r.tokenizer, want) << pattern << " threads " << threads;
      EXPECT_EQ(tokenizer_json_hash(r.tokenizer), tokenizer_json_hash(want));
    }
  }
}

#ifdef ONEBIT_HAVE_HF_TOKENIZER
TEST(BpeTrainer, TrainedTokenizerEncodesLikeHuggingFaceAndRoundTrips) {
  auto cases = load_cases();
  ASSERT_GE(cases.size(), 20u);
  for (const std::string pattern : {"gpt2", "llama3"}) {
    BpeTrainResult r = train_bpe(fixture_options(pattern, 2));
    auto tok = parse_hf_tokenizer(r.tokenizer.dump(), "trained-" + pattern);
    EXPECT_EQ(tok->vocab_size(), 600);
    EXPECT_EQ(tok->eos_id(), std::optional<int32_t>(0));
    EXPECT_EQ(tok->hash(), tokenizer_json_hash(r.tokenizer));
    for (const auto& c : cases) {
      if (c["pattern"] != pattern) continue;
      std::string text = c["text"];
      std::vector<int32_t> want = c["ids"];
      EXPECT_EQ(tok->encode(text), want) << pattern << ": " << text;
      EXPECT_EQ(tok->decode(want), text);
    }
    // Any bytes of valid UTF-8 survive encode → decode (byte-level: no unknown tokens).
    Rng rng(7);
    for (int i = 0; i < 50; ++i) {
      std::string s;
      for (int k = 0; k < 80; ++k) {
        uint64_t kind = rng.uniform_int(4);
        if (kind == 0) s += static_cast<char>(' ' + rng.uniform_int(95));
        else if (kind == 1) s += "\xe2\x98\x83";
        else if (kind == 2) s += "\n";
        else s += static_cast<char>('a' + rng.uniform_int(26));
      }
      EXPECT_EQ(tok->decode(tok->encode(s)), s);
    }
  }
}
#endif

// Hugging Face's BpeTrainer, given the same corpus and settings, defines the merges and the vocab.
// One legitimate difference: onebit numbers the 256 byte symbols in byte order, HF by symbol code
// point (GPT-2's order), so only the alphabet's ids differ; specials and merged tokens have the same ids.
void expect_same_as_hugging_face(const std::string& python, const TempDir& dir, const BpeTrainOptions& o,
                                 const std::string& what) {
  BpeTrainResult r = train_bpe(o);
  write_file_atomic(dir / "onebit.json", r.tokenizer.dump());
  const std::string cmd = cat(python, " ", ONEBIT_SOURCE_DIR, "/tools/hf_bpe_train.py ", (dir / "onebit.json").string(),
                              " ", o.inputs.at(0), " ", o.min_frequency, " ", (dir / "hf.json").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const json hf = read_json_file(dir / "hf.json");
  std::vector<std::string> hf_merges;
  for (const auto& m : hf["model"]["merges"])  // HF writes [left, right]; onebit "left right"
    hf_merges.push_back(m.is_array() ? m[0].get<std::string>() + " " + m[1].get<std::string>() : m.get<std::string>());
  const std::vector<std::string> ob_merges = r.tokenizer["model"]["merges"];
  ASSERT_GT(ob_merges.size(), 40u) << what << ": too few merges to compare";
  EXPECT_EQ(ob_merges, hf_merges) << what;
  const json& hv = hf["model"]["vocab"];
  const json& ov = r.tokenizer["model"]["vocab"];
  EXPECT_EQ(ov.size(), hv.size()) << what;
  const size_t alphabet_end = r.tokenizer["added_tokens"].size() + 256;
  for (const auto& [tok, id] : ov.items()) {
    ASSERT_TRUE(hv.contains(tok)) << what << ": HF has no token " << tok;
    if (id.get<size_t>() >= alphabet_end || id.get<size_t>() < r.tokenizer["added_tokens"].size())
      EXPECT_EQ(id, hv[tok]) << what << ": token " << tok;
    else
      EXPECT_LT(hv[tok].get<size_t>(), alphabet_end) << what << ": byte symbol " << tok;
  }
  EXPECT_EQ(r.tokenizer["added_tokens"], hf["added_tokens"]) << what;
}

TEST(BpeTrainer, MergesAndVocabAreThoseOfHuggingFaceBpeTrainer) {
  ONEBIT_ORACLE_PYTHON_OR_SKIP(python);
  TempDir dir;
  for (const std::string pattern : {"gpt2", "llama3"}) {
    SCOPED_TRACE(pattern);
    expect_same_as_hugging_face(python, dir, fixture_options(pattern, 2), "bpe_corpus.txt " + pattern);
  }
  // Random text over a small alphabet: many ties in count, between bytes whose byte order and symbol
  // order differ (space, newline, digits, multi-byte letters), and merges that recreate existing tokens.
  const uint64_t seed = test_seed();
  Rng rng(seed);
  const char* pieces[] = {"a", "b", "ab", " ", "  ", "\n", "\n\n", "é", "ß", "7", "'s", ",", "\t", "日"};
  std::string text;
  while (text.size() < 20000) text += pieces[rng.uniform_int(std::size(pieces))];
  write_file_atomic(dir / "random.txt", text);
  for (const std::string pattern : {"gpt2", "llama3"}) {
    SCOPED_TRACE(pattern);
    BpeTrainOptions o = fixture_options(pattern, 2);
    o.inputs = {(dir / "random.txt").string()};
    o.vocab_size = 420;
    o.min_frequency = 3;
    o.special_tokens = {"<|endoftext|>", "<pad>"};
    expect_same_as_hugging_face(python, dir, o, "random text " + pattern);
  }
}

// Live: Hugging Face loads the tokenizer.json the trainer writes and encodes/decodes fresh random
// texts exactly as onebit's loader does.
TEST(BpeTrainer, HuggingFaceEncodesWithTheTrainedTokenizerLikeOnebit) {
  ONEBIT_ORACLE_PYTHON_OR_SKIP(python);
  TempDir dir;
  Rng rng(test_seed());
  for (const std::string pattern : {"gpt2", "llama3"}) {
    SCOPED_TRACE(pattern);
    BpeTrainResult r = train_bpe(fixture_options(pattern, 2));
    write_file_atomic(dir / "tokenizer.json", r.tokenizer.dump());
    auto tok = load_tokenizer((dir / "tokenizer.json").string());
    std::vector<std::string> texts;
    for (int i = 0; i < 150; ++i) texts.push_back(testing::random_text(rng, 1 + rng.uniform_int(60)));
    testing::expect_encodes_like_hugging_face(python, *tok, dir / "tokenizer.json", texts, dir.path());
  }
}

// A text file over the 1 MiB piece size is read in pieces cut at line starts; with the named
// patterns those are word boundaries anyway, so the counts, and the merges, are those of the whole
// text (here read whole as one JSONL document).
TEST(BpeTrainer, BigTextFileTrainsLikeTheWholeText) {
  TempDir dir;
  Rng rng(8);
  const char* words[] = {"the", "Citizen", "naïve", "it's", "über", "42", "x", "Zebra"};
  const char* ends[] = {".\n", "\n\n", " \n", ":\n", "!\n\n\n"};
  std::string text;
  while (text.size() < 1'200'000) {
    for (int i = 0, n = 1 + static_cast<int>(rng.uniform_int(10)); i < n; ++i) {
      text += i ? " " : "";
      text += words[rng.uniform_int(8)];
    }
    text += ends[rng.uniform_int(5)];
  }
  write_file_atomic(dir / "big.txt", text);
  write_file_atomic(dir / "big.jsonl", json{{"text", text}}.dump() + "\n");
  for (const char* pattern : {"gpt2", "llama3"}) {
    BpeTrainOptions o;
    o.progress = false;
    o.vocab_size = 320;
    o.pattern = pattern;
    o.inputs = {(dir / "big.txt").string()};
    BpeTrainResult pieces = train_bpe(o);
    o.inputs = {(dir / "big.jsonl").string()};
    BpeTrainResult whole = train_bpe(o);
    EXPECT_GE(pieces.documents, 2u) << pattern << ": the file was not cut, the test tests nothing";
    EXPECT_EQ(whole.documents, 1u);
    EXPECT_EQ(pieces.words, whole.words) << pattern;
    EXPECT_EQ(pieces.tokenizer, whole.tokenizer) << pattern;
  }
}

TEST(BpeTrainer, BadOptionsAreClearErrors) {
  TempDir dir;
  write_file_atomic(dir / "c.txt", "some text");
  BpeTrainOptions o;
  o.inputs = {(dir / "c.txt").string()};
  o.progress = false;
  o.vocab_size = 200;
  expect_error([&] { train_bpe(o); }, "--vocab-size 200 is too small", "257");
  o.vocab_size = 300;
  o.pattern = "(unclosed";
  expect_error([&] { train_bpe(o); }, "pre-tokenization pattern", "(unclosed");
  o.pattern = "gpt2";
  o.special_tokens = {"<s>", "<s>"};
  expect_error([&] { train_bpe(o); }, "\"<s>\" is given twice");
  o.special_tokens = {};
  write_file_atomic(dir / "empty.txt", "");
  o.inputs = {(dir / "empty.txt").string()};
  expect_error([&] { train_bpe(o); }, "empty.txt", "no text");
  o.inputs = {(dir / "nope.txt").string()};
  expect_error([&] { train_bpe(o); }, "nope.txt", "no such file");
  // Too little text for the vocab: stops early with a smaller vocab, still valid.
  o.inputs = {(dir / "c.txt").string()};
  BpeTrainResult r = train_bpe(o);
  EXPECT_TRUE(r.stopped_by_min_frequency || r.merges < 44);
  EXPECT_LT(r.vocab_size, 300u);
}

}  // namespace
}  // namespace onebit::data
