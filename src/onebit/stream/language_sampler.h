#pragma once
// Which language the next shard comes from. Smooth weighted round robin (nginx's): every step each
// language's credit grows by its weight and the richest one is picked and pays the total. Chosen
// over seeded random sampling because every prefix of the sequence is within fewer picks than there are
// languages of the exact proportions (random sampling drifts by ~sqrt(draws)), so a short run (or the first hours of a long one) already sees the requested
// mix, and because the state is a few integers that restore exactly. The seed only sets the starting
// credits, so different seeds give different (equally balanced) interleavings.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "onebit/core/json_util.h"
#include "onebit/stream/manifest.h"

namespace onebit::stream {

struct LanguageWeight {
  std::string language;
  double weight = 0;  // relative; need not sum to 1
};

// "python:0.4,c:0.2": every name must be one of `known` (the manifest's languages), weights finite and
// >= 0, each language at most once, and not all zero. Languages left out of the spec are not streamed.
// Errors name `flag` (e.g. --languages).
std::vector<LanguageWeight> parse_language_weights(const std::string& spec, const std::vector<std::string>& known,
                                                   const std::string& flag);

// The default mix: each language in proportion to the total bytes of its shards.
std::vector<LanguageWeight> weights_by_bytes(const Manifest& m);

class LanguageSampler {
 public:
  // Languages of weight 0 are dropped at once; at least one must have a positive weight.
  LanguageSampler(const std::vector<LanguageWeight>& weights, uint64_t seed);

  // The next language; an error once every language is exhausted.
  const std::string& next();
  // A language with no shards left: it is never returned again, the others share its part.
  void drop(const std::string& language);
  bool empty() const { return active_.empty(); }
  std::vector<std::string> languages() const;

  // The whole position as JSON: a sampler built with the same weights and restored from it returns
  // the same sequence from there on. restore() insists on the same languages and weights (a resumed
  // run with another --languages is an error naming `where`).
  json state() const;
  void restore(const json& state, const std::string& where);

 private:
  struct Entry {
    std::string language;
    int64_t weight;  // the relative weight scaled to integers, so the arithmetic (and resume) is exact
    int64_t credit;
  };
  std::vector<Entry> active_;  // in the order given, which breaks ties
  std::vector<std::string> all_;
};

}  // namespace onebit::stream
