#include "onebit/stream/language_sampler.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include "onebit/core/error.h"
#include "onebit/core/rng.h"

namespace onebit::stream {
namespace {

// The largest weight becomes 2^40: a relative precision of 1e-12, and a total that stays far from
// int64 overflow for up to 2^20 languages.
constexpr double kScale = 1099511627776.0;

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

}  // namespace

std::vector<LanguageWeight> parse_language_weights(const std::string& spec, const std::vector<std::string>& known,
                                                   const std::string& flag) {
  const std::set<std::string> known_set(known.begin(), known.end());
  std::vector<LanguageWeight> out;
  std::set<std::string> seen;
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string item = trim(spec.substr(start, comma - start));
    start = comma + 1;
    const size_t colon = item.rfind(':');
    if (colon == std::string::npos)
      fail(flag, ": \"", printable(item), "\" is not language:weight (e.g. python:0.4,c:0.2)");
    const std::string lang = trim(item.substr(0, colon)), num = trim(item.substr(colon + 1));
    if (!known_set.count(lang)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + printable(k, 40);
      fail(flag, ": unknown language \"", printable(lang), "\" (the manifest has: ", printable(list, 400), ")");
    }
    if (!seen.insert(lang).second) fail(flag, ": language \"", printable(lang), "\" is given twice");
    char* end = nullptr;
    errno = 0;
    const double w = num.empty() ? NAN : std::strtod(num.c_str(), &end);
    if (num.empty() || end != num.c_str() + num.size() || errno == ERANGE || !std::isfinite(w))
      fail(flag, ": weight of \"", printable(lang), "\" is not a number (got \"", printable(num), "\")");
    if (w < 0) fail(flag, ": weight of \"", printable(lang), "\" is negative (", num, ")");
    out.push_back({lang, w});
  }
  if (std::none_of(out.begin(), out.end(), [](const LanguageWeight& l) { return l.weight > 0; }))
    fail(flag, ": every weight is zero; at least one language needs a positive weight");
  return out;
}

std::vector<LanguageWeight> weights_by_bytes(const Manifest& m) {
  std::map<std::string, double> bytes;
  for (const auto& s : m.shards) bytes[s.language] += static_cast<double>(s.size);
  std::vector<LanguageWeight> out;
  for (const auto& [lang, b] : bytes) out.push_back({lang, b});
  return out;
}

LanguageSampler::LanguageSampler(const std::vector<LanguageWeight>& weights, uint64_t seed) {
  double max_w = 0;
  for (const auto& w : weights) {
    OB_CHECK(std::isfinite(w.weight) && w.weight >= 0, "language sampler: weight of \"", printable(w.language),
             "\" must be finite and >= 0");
    max_w = std::max(max_w, w.weight);
  }
  if (!(max_w > 0)) fail("language sampler: no language has a positive weight (or every shard is empty)");
  Rng rng(mix_seed(seed, 0x6c616e67));  // "lang": independent of other uses of the run's seed
  for (const auto& w : weights) {
    all_.push_back(w.language);
    if (w.weight <= 0) continue;
    const int64_t scaled = std::max<int64_t>(1, std::llround(w.weight / max_w * kScale));
    // A starting credit in [0, weight) shifts the phase without changing the long-run proportions.
    active_.push_back({w.language, scaled, static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(scaled)))});
  }
}

const std::string& LanguageSampler::next() {
  if (active_.empty()) fail("language sampler: every language is exhausted");
  int64_t total = 0;
  size_t best = 0;
  for (size_t i = 0; i < active_.size(); ++i) {
    active_[i].credit += active_[i].weight;
    total += active_[i].weight;
    if (active_[i].credit > active_[best].credit) best = i;
  }
  active_[best].credit -= total;
  return active_[best].language;
}

void LanguageSampler::drop(const std::string& language) {
  std::erase_if(active_, [&](const Entry& e) { return e.language == language; });
}

std::vector<std::string> LanguageSampler::languages() const {
  std::vector<std::string> out;
  for (const auto& e : active_) out.push_back(e.language);
  return out;
}

json LanguageSampler::state() const {
  json active = json::array();
  for (const auto& e : active_) active.push_back({{"language", e.language}, {"weight", e.weight}, {"credit", e.credit}});
  return {{"active", active}};
}

void LanguageSampler::restore(const json& state, const std::string& where) {
  if (!state.is_object() || !state.contains("active") || !state["active"].is_array())
    fail(where, ": language sampler state needs an array \"active\"");
  // Weights are compared with those this sampler was built with: a different --languages (or a
  // different manifest) would silently change the mix of a resumed run.
  std::vector<Entry> restored;
  for (const auto& e : state["active"]) {
    Entry r{json_get<std::string>(e, "language", where), json_get<int64_t>(e, "weight", where),
            json_get<int64_t>(e, "credit", where)};
    auto it = std::find_if(active_.begin(), active_.end(), [&](const Entry& a) { return a.language == r.language; });
    if (it == active_.end() || it->weight != r.weight)
      fail(where, ": language \"", printable(r.language),
           "\" is not in this run's mix with the same weight (was --languages or the manifest changed?)");
    if (std::any_of(restored.begin(), restored.end(), [&](const Entry& x) { return x.language == r.language; }))
      fail(where, ": language \"", printable(r.language), "\" appears twice in the sampler state");
    restored.push_back(r);
  }
  active_ = std::move(restored);
}

}  // namespace onebit::stream
