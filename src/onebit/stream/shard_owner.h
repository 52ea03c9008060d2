#pragma once
// Which data-parallel rank streams which shard. Under `mpirun -np N onebit stack-stream` each rank
// downloads, reads and deletes only the shards it owns, so the N ranks together read every shard
// of an epoch once and no shard crosses the network twice.
//
// A pure function of (manifest, weights, N): every rank computes the same table without talking to
// the others, and a resume on the same N finds the same shares. Each streamed language's shards are
// dealt out largest first (ties by path), each to the rank holding the fewest bytes of that
// language so far (ties: fewest bytes overall, then the lowest rank), so every rank gets each
// language's share in the mix and about 1/N of the bytes. Ownership does not change between
// epochs (only the order in which a rank reads its shards does, shard_order.h): a rank whose
// shards all fit its disk share keeps them from one epoch to the next instead of downloading them
// again.
#include <vector>

#include "onebit/stream/language_sampler.h"
#include "onebit/stream/manifest.h"

namespace onebit::stream {

// owner[i] for each manifest shard i: a rank in [0, world), or -1 for a shard of a language that is
// not streamed (no positive weight).
std::vector<int> shard_owners(const Manifest& m, const std::vector<LanguageWeight>& weights, int world);

}  // namespace onebit::stream
