// The language sampler: proportions over many draws (and over every prefix), the same sequence after a
// state()/restore() at a random point, exhaustion, the default mix by bytes, and bad --languages specs.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "onebit/core/error.h"
#include "onebit/stream/language_sampler.h"
#include "test_seed.h"

namespace onebit::stream {
namespace {

const std::vector<std::string> kKnown = {"python", "c", "markdown", "rust"};

std::string spec_error(const std::string& spec) {
  try {
    parse_language_weights(spec, kKnown, "--languages");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LanguageSampler, FrequenciesMatchWeights) {
  std::mt19937_64 gen(test::test_seed());
  std::uniform_real_distribution<double> u(0.01, 1.0);
  std::vector<LanguageWeight> w = {{"python", u(gen)}, {"c", u(gen)}, {"markdown", u(gen)}, {"rust", 0.0}};
  double total = 0;
  for (const auto& x : w) total += x.weight;
  LanguageSampler s(w, gen());
  std::map<std::string, double> count;
  const int n = 100000;
  for (int i = 1; i <= n; ++i) {
    count[s.next()] += 1;
    // count - i*w/W = (credit0 - credit_i)/W, with credit0 in [0, W) and every credit in [-W, nW)
    // (the picked one pays W after being at least the mean): fewer than n = 3 picks off at any prefix.
    for (const auto& x : w) ASSERT_NEAR(count[x.language], i * x.weight / total, 3.0) << x.language << " at " << i;
  }
  EXPECT_EQ(count["rust"], 0);
}

TEST(LanguageSampler, SeedChangesThePhaseOnly) {
  std::vector<LanguageWeight> w = {{"python", 3}, {"c", 2}, {"markdown", 1}};
  auto seq = [&](uint64_t seed) {
    LanguageSampler s(w, seed);
    std::string out;
    for (int i = 0; i < 60; ++i) out += s.next()[0];
    return out;
  };
  EXPECT_EQ(seq(7), seq(7));
  bool differs = false;
  for (uint64_t seed = 1; seed < 20 && !differs; ++seed) differs = seq(seed) != seq(0);
  EXPECT_TRUE(differs);
}

TEST(LanguageSampler, RestoreContinuesTheSameSequence) {
  std::mt19937_64 gen(test::test_seed());
  std::vector<LanguageWeight> w = {{"python", 0.4}, {"c", 0.2}, {"markdown", 0.1}, {"rust", 0.3}};
  const uint64_t seed = gen();
  LanguageSampler a(w, seed);
  const int cut = static_cast<int>(gen() % 5000);
  for (int i = 0; i < cut; ++i) a.next();
  if (gen() % 2) a.drop("c");
  // Through text, as the state file stores it.
  const json st = json::parse(a.state().dump());
  LanguageSampler b(w, seed + 1);  // a fresh sampler: only the state decides where it is
  b.restore(st, "state.json");
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(a.next(), b.next()) << "draw " << i << " after cut " << cut;
}

TEST(LanguageSampler, RestoreRefusesAnotherMix) {
  LanguageSampler a({{"python", 0.4}, {"c", 0.2}}, 1);
  const json st = a.state();
  LanguageSampler other({{"python", 0.5}, {"c", 0.2}}, 1);
  try {
    other.restore(st, "stream_state.json");
    FAIL() << "restored a state with different weights";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stream_state.json"), std::string::npos) << e.what();
  }
  LanguageSampler fewer({{"python", 0.4}}, 1);
  EXPECT_THROW(fewer.restore(st, "s"), Error);
  EXPECT_THROW(a.restore(json{{"active", 3}}, "s"), Error);
  EXPECT_THROW(a.restore(json::array(), "s"), Error);
}

TEST(LanguageSampler, ExhaustedLanguagesAreDroppedAndTheRestRenormalised) {
  LanguageSampler s({{"python", 0.5}, {"c", 0.3}, {"markdown", 0.2}}, 3);
  for (int i = 0; i < 100; ++i) s.next();
  s.drop("python");
  std::map<std::string, int> count;
  for (int i = 0; i < 5000; ++i) count[s.next()]++;
  EXPECT_EQ(count["python"], 0);
  EXPECT_NEAR(count["c"], 5000 * 0.6, 3);
  EXPECT_NEAR(count["markdown"], 5000 * 0.4, 3);
  s.drop("c");
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s.next(), "markdown");
  s.drop("markdown");
  EXPECT_TRUE(s.empty());
  EXPECT_THROW(s.next(), Error);
}

TEST(LanguageSampler, DefaultWeightsAreProportionalToBytes) {
  Manifest m;
  m.shards = {{"c", "data/c/train-00000-of-00002.parquet", 300, "", {}},
              {"c", "data/c/train-00001-of-00002.parquet", 100, "", {}},
              {"python", "data/python/train-00000-of-00001.parquet", 600, "", {}},
              {"markdown", "data/markdown/train-00000-of-00001.parquet", 0, "", {}}};
  const auto w = weights_by_bytes(m);
  std::map<std::string, double> by;
  for (const auto& x : w) by[x.language] = x.weight;
  EXPECT_EQ(by["c"], 400);
  EXPECT_EQ(by["python"], 600);
  EXPECT_EQ(by["markdown"], 0);
  LanguageSampler s(w, 5);
  EXPECT_EQ(s.languages(), (std::vector<std::string>{"c", "python"}));  // empty markdown never picked
  std::map<std::string, int> count;
  for (int i = 0; i < 1000; ++i) count[s.next()]++;
  EXPECT_NEAR(count["c"], 400, 2);
  EXPECT_NEAR(count["python"], 600, 2);
}

TEST(LanguageSampler, ParsesSpecs) {
  const auto w = parse_language_weights(" python:0.4, c:0.2 ,markdown:0", kKnown, "--languages");
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].language, "python");
  EXPECT_DOUBLE_EQ(w[0].weight, 0.4);
  EXPECT_EQ(w[1].language, "c");
  EXPECT_DOUBLE_EQ(w[2].weight, 0.0);
}

TEST(LanguageSampler, BadSpecsAreNamedErrors) {
  EXPECT_NE(spec_error("python:0.4,cobol:0.2").find("--languages: unknown language \"cobol\""), std::string::npos);
  EXPECT_NE(spec_error("python:abc").find("--languages: weight of \"python\" is not a number"), std::string::npos);
  EXPECT_NE(spec_error("python:1e999").find("not a number"), std::string::npos);
  EXPECT_NE(spec_error("python:nan").find("not a number"), std::string::npos);
  EXPECT_NE(spec_error("python:").find("not a number"), std::string::npos);
  EXPECT_NE(spec_error("python:0.4x").find("not a number"), std::string::npos);
  EXPECT_NE(spec_error("python:-0.1").find("negative"), std::string::npos);
  EXPECT_NE(spec_error("python:0,c:0").find("every weight is zero"), std::string::npos);
  EXPECT_NE(spec_error("python:1,python:2").find("given twice"), std::string::npos);
  EXPECT_NE(spec_error("python").find("is not language:weight"), std::string::npos);
  EXPECT_NE(spec_error("").find("is not language:weight"), std::string::npos);
  EXPECT_NE(spec_error("python:1,").find("is not language:weight"), std::string::npos);
  const std::string e = spec_error("py\nthon:1");
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

}  // namespace
}  // namespace onebit::stream
