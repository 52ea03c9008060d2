#pragma once
// How the AVX-512 SGEMM (sgemm_avx512.cpp) cuts C = alpha op(A) op(B) + beta C into work. Two kinds of choice:
// - The summation over K (K blocks, K chunks, segments) depends on N and K only, so the result has the same bits
//   at any thread count (exact resume and the determinism tests need that), and a row's result does not depend on
//   how many rows (M) there are (batch invariance: tests/model/transformer_test.cpp LogitsAreBatchInvariant).
// - The task grid over C (macro-tiles) also depends on the thread count: it decides only which thread does
//   which tile, never the order of any sum.
// One GEMM is a sequence of chunks (K chunk x M chunk x N chunk, bounding the memory of the packed operands); each
// chunk is two pool jobs (all threads pack its op(A) and op(B) panels once, then run the tasks), so there is no
// barrier per K block. Packing op(A) once and sharing it, rather than per task, matters: packed element by
// element it cost about an eighth of the micro-kernel's time (perf at 1 thread), and a task grid that packed each
// row block once per column part would pay that several times over.
#include <cstdint>
#include <vector>

namespace onebit::kernels::cpu {

inline constexpr int kSgemmMR = 12, kSgemmNR = 32;  // register tile: 12 x 32 = 24 zmm accumulators
inline constexpr int kSgemmKC = 256;                // K block: one packed B panel (KC x NR floats) fills L1
inline constexpr int kSgemmMC = 192;                // A rows a task runs against one B panel (they stay in L2)
// Packed op(A) + op(B) of one chunk, in floats (32 MiB): the LM head's weight is packed a part at a time, not as
// one 65 MB copy.
inline constexpr int64_t kSgemmPackBudget = int64_t(8) << 20;

// One task: MR-row panels [ip0, ip1) x NR-column panels [jq0, jq1) of the chunk, over the chunk's K blocks
// [kb0, kb1) (segment `seg`; segment 0 accumulates into C, segment s > 0 into partial s). Chunk-relative indices.
struct SgemmTask {
  int seg, ip0, ip1, jq0, jq1, kb0, kb1;
};

// One chunk: K blocks [kb0, kb0 + kblocks) x M panels [ip0, ip0 + mpanels) x N panels [jp0, jp0 + npanels).
struct SgemmChunk {
  int kb0, kblocks, ip0, mpanels, jp0, npanels;
  int segments;        // the chunk's K blocks in this many runs, summed separately and added in order
  int mparts, nparts;  // macro-tile grid: tasks = segments x mparts x nparts
  int tasks() const { return segments * mparts * nparts; }
  // Task t; consecutive tasks share their B panels (same segment and column part), so threads that run at the
  // same time read the same packed B.
  SgemmTask task(int t) const;
};

struct SgemmPlan {
  int M, N, K, threads;
  int mpanels, npanels;  // C in MR x NR micro-tiles
  int kblocks, kc;       // K in kblocks blocks of kc (the last may be shorter), as many as K / KC rounded
  int kchunk, mchunk, nchunk;  // K blocks, M panels and N panels per chunk (packed size within the budget)
  int kchunks() const { return (kblocks + kchunk - 1) / kchunk; }
  int mchunks() const { return (mpanels + mchunk - 1) / mchunk; }
  int nchunks() const { return (npanels + nchunk - 1) / nchunk; }
  // K chunks run in order, each adding to C; within one, the M x N chunks are independent.
  SgemmChunk chunk(int kci, int mci, int nci) const;
};

// The plan for `threads` threads (1: one task per chunk, for a serial call).
SgemmPlan plan_sgemm(int M, int N, int K, int threads);

// Segments of a K chunk of `kblocks` blocks over a C of `npanels` N panels: more than one only where C is narrow
// and K long (a weight gradient dW = dyᵀx with K = B*T, the LM head's dx), so that C's few micro-tiles times the
// segments occupy many threads. Never depends on M.
int sgemm_segments(int npanels, int kblocks);

// Work balance of a plan: every task's work in micro-kernel calls (one MR x NR tile over one K block), spread by
// a simulated schedule (each task, in order, to the least-loaded thread: the pool's threads claiming tasks at
// equal speed). Each chunk ends in a barrier, so the GEMM takes the sum over chunks of the busiest thread's work.
struct SgemmBalance {
  int64_t jobs = 0, tasks = 0;      // pool jobs (each ends in a barrier) and tasks of the GEMM
  std::vector<int64_t> per_thread;  // micro-kernel calls per thread, summed over the chunks
  int64_t critical = 0;             // sum over chunks of the busiest thread's calls
  double efficiency() const;        // mean calls per thread / critical: 1 = perfectly even
};
SgemmBalance sgemm_balance(const SgemmPlan& plan);

}  // namespace onebit::kernels::cpu
