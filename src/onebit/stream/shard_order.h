#pragma once
// The order in which one epoch streams the shards: the LanguageSampler picks a language, that
// language's next shard (in manifest order) follows, and a language with no shards left is dropped.
// A pure function of (manifest, weights, seed, epoch), so a resumed run recomputes exactly the order
// it was in and needs to save only its position. Each epoch gets its own interleaving.
#include <cstdint>
#include <vector>

#include "onebit/stream/language_sampler.h"
#include "onebit/stream/manifest.h"

namespace onebit::stream {

// Indices into m.shards. Languages without a positive weight are left out; so are the shards
// `include` is false for, when it is given (one data-parallel rank's shards, shard_owner.h).
std::vector<size_t> epoch_order(const Manifest& m, const std::vector<LanguageWeight>& weights, uint64_t seed,
                                uint64_t epoch, const std::vector<bool>& include = {});

}  // namespace onebit::stream
