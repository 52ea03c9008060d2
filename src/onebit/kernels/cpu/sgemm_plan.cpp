#include "onebit/kernels/cpu/sgemm_plan.h"

#include <algorithm>
#include <functional>
#include <queue>

namespace onebit::kernels::cpu {
namespace {

constexpr int MR = kSgemmMR, NR = kSgemmNR, MC_PANELS = kSgemmMC / kSgemmMR;

// Segments: C narrower than kSegmentPanels N panels (2048 columns) with a long K gets up to kSegmentPanels /
// npanels segments, so that even a few hundred rows of C give several hundred (segment, tile) pieces of work;
// each segment keeps at least kMinSegmentBlocks K blocks, so its extra pass over C (write the partial, add it)
// stays small next to its work. The rule reads N and K, never M: a row's result must not depend on how many rows
// the batch has (batch invariance: gradient accumulation and batched generation rely on it).
constexpr int kSegmentPanels = 64;
constexpr int kMinSegmentBlocks = 4;

// The grid's cost model, in micro-kernel calls (one 12x32 tile over one K block: ~1.1 us at ~180 GFLOP/s).
// Bringing a packed A panel (12 KiB) into L2 or a packed B panel (32 KiB) into L1 from L3 costs a fraction of a
// call; a task costs a claim and its loop set-up; and a thread that starts or runs late delays the job by about
// half a task (the pool's caller waits for every task), which favours a few tasks per thread over exactly one.
constexpr double kLoadAPanel = 0.15, kLoadBPanel = 0.3, kPerTask = 1.0, kStraggler = 0.5;
// Rows every chunk has room for (768), and the narrowest N chunk (512 columns) before K is cut instead.
constexpr int kChunkRowPanels = 64, kMinChunkNPanels = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Grid {
  int mparts, nparts;
};

double task_cost(int64_t mt, int64_t nt, int64_t kbs) {
  const int64_t a_blocks = ceil_div(mt, MC_PANELS);  // each MC block of the task's rows streams its B panels again
  return (double)kbs * ((double)mt * nt + kLoadAPanel * mt + kLoadBPanel * nt * a_blocks) + kPerTask;
}

// The macro-tile grid for mp x np micro-tiles, `segments` runs of up to `kbs` K blocks, on `threads` threads:
// the smallest estimated time (rounds of tasks x the largest task, plus a straggler's share).
Grid choose_grid(int mp, int np, int segments, int kbs, int threads) {
  if (threads <= 1) return {1, 1};
  Grid best{1, 1};
  double best_cost = -1;
  const int64_t max_tasks = 8 * (int64_t)threads;
  for (int mparts = 1; mparts <= mp; ++mparts) {
    const int64_t mt = ceil_div(mp, mparts);
    if (mparts > 1 && ceil_div(mp, mparts - 1) == mt) continue;  // same largest tile, more tasks: never better
    if ((int64_t)segments * mparts > max_tasks) break;
    for (int nparts = 1; nparts <= np; ++nparts) {
      const int64_t nt = ceil_div(np, nparts);
      if (nparts > 1 && ceil_div(np, nparts - 1) == nt) continue;
      const int64_t tasks = (int64_t)segments * mparts * nparts;
      if (tasks > max_tasks) break;
      const double c = task_cost(mt, nt, kbs), cost = (double)ceil_div(tasks, threads) * c + kStraggler * c;
      if (best_cost < 0 || cost < best_cost) {
        best_cost = cost;
        best = {mparts, nparts};
      }
    }
  }
  return best;
}

// A small per-thread memo of grids: a training step repeats the same dozen shapes, and the search costs a few
// microseconds, as much as a small GEMM at many threads.
Grid cached_grid(int mp, int np, int segments, int kbs, int threads) {
  struct Entry {
    int mp = -1, np, segments, kbs, threads;
    Grid grid;
  };
  static thread_local Entry memo[32];
  static thread_local int next = 0;
  for (const Entry& e : memo)
    if (e.mp == mp && e.np == np && e.segments == segments && e.kbs == kbs && e.threads == threads) return e.grid;
  const Grid g = choose_grid(mp, np, segments, kbs, threads);
  memo[next] = {mp, np, segments, kbs, threads, g};
  next = (next + 1) % 32;
  return g;
}

}  // namespace

int sgemm_segments(int npanels, int kblocks) {
  return std::clamp(kSegmentPanels / std::max(1, npanels), 1, std::max(1, kblocks / kMinSegmentBlocks));
}

SgemmTask SgemmChunk::task(int t) const {
  const int per_seg = mparts * nparts, seg = t / per_seg, tile = t % per_seg;
  const int ni = tile / mparts, mi = tile % mparts;
  // Balanced splits: part sizes differ by at most one panel / one K block.
  return {seg,
          (int)((int64_t)mpanels * mi / mparts),
          (int)((int64_t)mpanels * (mi + 1) / mparts),
          (int)((int64_t)npanels * ni / nparts),
          (int)((int64_t)npanels * (ni + 1) / nparts),
          (int)((int64_t)kblocks * seg / segments),
          (int)((int64_t)kblocks * (seg + 1) / segments)};
}

SgemmPlan plan_sgemm(int M, int N, int K, int threads) {
  SgemmPlan p{};
  p.M = M;
  p.N = N;
  p.K = K;
  p.threads = std::max(1, threads);
  p.mpanels = (int)ceil_div(M, MR);
  p.npanels = (int)ceil_div(N, NR);
  // K in equal blocks of about KC (at most 1.5 KC): a short last block would cost one more pass over all of C for
  // little work (the LM head's weight gradient has K = 262 rows per logits chunk).
  p.kblocks = std::max(1, (K + kSgemmKC / 2) / kSgemmKC);
  p.kc = (int)ceil_div(K, p.kblocks);
  p.kblocks = (int)ceil_div(K, p.kc);  // rounding kc up can leave fewer blocks (K = 256001: 997 of 257, not 1000)
  // Chunks within the budget of packed floats, kc x (rows + columns) per K block. The K chunks (they decide sums)
  // are planned from N and K with room for kChunkRowPanels rows, whatever M is (batch invariance, as for the
  // segments). N chunks change no sum, so N is cut first, into equal chunks; K only when even the narrowest N chunk
  // does not fit all of K. M chunks then take the rows that fit.
  const int64_t k_total = (int64_t)p.kblocks * p.kc;
  const int64_t width = kSgemmPackBudget / k_total;  // rows + columns that fit with all of K
  const int64_t rows = (int64_t)kChunkRowPanels * MR;
  int64_t nchunk = p.npanels;
  if (rows + nchunk * NR > width) {
    nchunk = std::min<int64_t>(p.npanels, kMinChunkNPanels);
    if (rows + nchunk * NR <= width) nchunk = ceil_div(p.npanels, ceil_div(p.npanels, (width - rows) / NR));
  }
  p.nchunk = (int)nchunk;
  p.kchunk = (int)std::clamp<int64_t>(kSgemmPackBudget / ((int64_t)p.kc * (rows + nchunk * NR)), 1, p.kblocks);
  const int64_t fit_rows = kSgemmPackBudget / ((int64_t)p.kchunk * p.kc) - nchunk * NR;
  const int64_t mchunk = std::max<int64_t>(kChunkRowPanels, fit_rows / MR);
  p.mchunk = (int)ceil_div(p.mpanels, ceil_div(p.mpanels, mchunk));
  return p;
}

SgemmChunk SgemmPlan::chunk(int kci, int mci, int nci) const {
  SgemmChunk c{};
  c.kb0 = kci * kchunk;
  c.kblocks = std::min(kchunk, kblocks - c.kb0);
  c.ip0 = mci * mchunk;
  c.mpanels = std::min(mchunk, mpanels - c.ip0);
  c.jp0 = nci * nchunk;
  c.npanels = std::min(nchunk, npanels - c.jp0);
  // Segments from the whole C's width and this chunk's K blocks.
  c.segments = sgemm_segments(npanels, c.kblocks);
  const Grid g = cached_grid(c.mpanels, c.npanels, c.segments, (int)ceil_div(c.kblocks, c.segments), threads);
  c.mparts = g.mparts;
  c.nparts = g.nparts;
  return c;
}

double SgemmBalance::efficiency() const {
  if (critical == 0 || per_thread.empty()) return 1.0;
  int64_t total = 0;
  for (int64_t w : per_thread) total += w;
  return (double)total / (double)per_thread.size() / (double)critical;
}

SgemmBalance sgemm_balance(const SgemmPlan& plan) {
  SgemmBalance b;
  b.per_thread.assign(plan.threads, 0);
  for (int kci = 0; kci < plan.kchunks(); ++kci)
    for (int mci = 0; mci < plan.mchunks(); ++mci)
    for (int nci = 0; nci < plan.nchunks(); ++nci) {
      const SgemmChunk c = plan.chunk(kci, mci, nci);
      b.jobs += plan.threads > 1 ? 2 : 0;
      b.tasks += c.tasks();
      // Each task, in order, to the thread with the least work so far (lowest index on ties).
      using Load = std::pair<int64_t, int>;
      std::priority_queue<Load, std::vector<Load>, std::greater<Load>> q;
      for (int t = 0; t < plan.threads; ++t) q.push({0, t});
      std::vector<int64_t> load(plan.threads, 0);
      for (int t = 0; t < c.tasks(); ++t) {
        const SgemmTask k = c.task(t);
        const int64_t work = (int64_t)(k.ip1 - k.ip0) * (k.jq1 - k.jq0) * (k.kb1 - k.kb0);
        auto [l, th] = q.top();
        q.pop();
        load[th] = l + work;
        q.push({l + work, th});
      }
      b.critical += *std::max_element(load.begin(), load.end());
      for (int t = 0; t < plan.threads; ++t) b.per_thread[t] += load[t];
    }
  return b;
}

}  // namespace onebit::kernels::cpu
