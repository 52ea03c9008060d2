#include "onebit/stream/shard_order.h"

#include <deque>
#include <map>

#include "onebit/core/rng.h"

namespace onebit::stream {

std::vector<size_t> epoch_order(const Manifest& m, const std::vector<LanguageWeight>& weights, uint64_t seed,
                                uint64_t epoch, const std::vector<bool>& include) {
  std::map<std::string, std::deque<size_t>> by_language;
  for (size_t i = 0; i < m.shards.size(); ++i)
    if (include.empty() || include[i]) by_language[m.shards[i].language].push_back(i);
  std::vector<LanguageWeight> used;
  for (const auto& w : weights)
    if (w.weight > 0 && by_language.count(w.language)) used.push_back(w);
  std::vector<size_t> order;
  if (used.empty()) return order;
  LanguageSampler sampler(used, mix_seed(seed, epoch));
  while (!sampler.empty()) {
    const std::string lang = sampler.next();
    auto& q = by_language[lang];
    order.push_back(q.front());
    q.pop_front();
    if (q.empty()) sampler.drop(lang);
  }
  return order;
}

}  // namespace onebit::stream
