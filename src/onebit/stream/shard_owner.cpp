#include "onebit/stream/shard_owner.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <tuple>

#include "onebit/core/error.h"

namespace onebit::stream {

std::vector<int> shard_owners(const Manifest& m, const std::vector<LanguageWeight>& weights, int world) {
  OB_CHECK(world >= 1, "shard_owners: world size ", world);
  std::set<std::string> streamed;
  for (const auto& w : weights)
    if (w.weight > 0) streamed.insert(w.language);
  std::map<std::string, std::vector<size_t>> by_language;
  for (size_t i = 0; i < m.shards.size(); ++i)
    if (streamed.count(m.shards[i].language)) by_language[m.shards[i].language].push_back(i);

  std::vector<int> owner(m.shards.size(), -1);
  std::vector<uint64_t> total(static_cast<size_t>(world), 0);
  for (auto& [language, shards] : by_language) {
    std::sort(shards.begin(), shards.end(), [&](size_t a, size_t b) {
      if (m.shards[a].size != m.shards[b].size) return m.shards[a].size > m.shards[b].size;
      return m.shards[a].path < m.shards[b].path;
    });
    std::vector<uint64_t> mine(static_cast<size_t>(world), 0);
    for (const size_t i : shards) {
      size_t best = 0;
      for (size_t r = 1; r < mine.size(); ++r)
        if (std::tie(mine[r], total[r]) < std::tie(mine[best], total[best])) best = r;
      owner[i] = static_cast<int>(best);
      mine[best] += m.shards[i].size;
      total[best] += m.shards[i].size;
    }
  }
  return owner;
}

}  // namespace onebit::stream
