// The CPU communicator: OpenMPI collectives on host buffers. Errors are returned (MPI_ERRORS_RETURN)
// and turned into one line naming the collective, so a rank whose peer died says so instead of
// aborting silently; mpirun then ends the rest of the job.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "onebit/core/error.h"
#include "onebit/dist/backends.h"

namespace onebit::dist {

namespace {

// MPI counts are int: large buffers (an 8b model's gradients) go in chunks of this many values.
constexpr size_t kChunk = size_t{1} << 30;

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const LaunchEnv& env) : local_rank_(env.local_rank) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      // The OpenMP threads of a rank never call MPI: only the main thread does.
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_init_ = true;
    }
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &world_);
    if (rank_ != env.rank || world_ != env.world_size)
      fail("MPI reports rank ", rank_, " of ", world_, " but the environment says rank ", env.rank, " of ",
           env.world_size, " (OMPI_COMM_WORLD_RANK/SIZE); launch with OpenMPI's mpirun");
  }

  ~MpiCommunicator() override {
    // Unwinding from an error: this rank exits non-zero without MPI_Finalize (which would wait for
    // ranks that may be blocked in a collective); mpirun sees that and ends the job.
    if (std::uncaught_exceptions() > 0) return;
    MPI_Comm_free(&comm_);
    if (owns_init_) MPI_Finalize();
  }

  const char* name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  int local_rank() const override { return local_rank_; }

  void all_reduce_sum(float* buf, size_t n, Wire wire) override {
    // The CPU path sends f32 whatever the wire asks: MPI has no bf16 type, and host memory
    // bandwidth, not the wire, bounds a CPU step.
    for (size_t at = 0; at < n; at += kChunk)
      check(MPI_Allreduce(MPI_IN_PLACE, buf + at, count(n - at), MPI_FLOAT, MPI_SUM, comm_), "MPI_Allreduce");
  }

  void reduce_scatter_sum(float* buf, std::span<const size_t> counts) override {
    check_counts(counts, "reduce_scatter");
    // One MPI_Reduce per part, to the rank that owns it, in place there (parts of any size).
    size_t off = 0;
    for (int r = 0; r < world_; ++r) {
      const size_t n = counts[static_cast<size_t>(r)];
      for (size_t at = 0; at < n; at += kChunk) {
        float* p = buf + off + at;
        check(MPI_Reduce(r == rank_ ? MPI_IN_PLACE : p, p, count(n - at), MPI_FLOAT, MPI_SUM, r, comm_), "MPI_Reduce");
      }
      off += n;
    }
  }

  void all_gather(float* buf, std::span<const size_t> counts) override {
    check_counts(counts, "all_gather");
    // Each part broadcast from its owner: MPI_Allgatherv's int displacements cannot address a
    // multi-billion-value arena.
    size_t off = 0;
    for (int r = 0; r < world_; ++r) {
      const size_t n = counts[static_cast<size_t>(r)];
      for (size_t at = 0; at < n; at += kChunk)
        check(MPI_Bcast(buf + off + at, count(n - at), MPI_FLOAT, r, comm_), "MPI_Bcast");
      off += n;
    }
  }

  void broadcast(float* buf, size_t n, int root) override {
    for (size_t at = 0; at < n; at += kChunk) check(MPI_Bcast(buf + at, count(n - at), MPI_FLOAT, root, comm_), "MPI_Bcast");
  }

  void gather_to_host(const float* part, std::span<const size_t> counts, float* full, int root) override {
    check_counts(counts, "gather_to_host");
    if (rank_ != root) {
      const size_t n = counts[static_cast<size_t>(rank_)];
      for (size_t at = 0; at < n; at += kChunk)
        check(MPI_Send(part + at, count(n - at), MPI_FLOAT, root, 0, comm_), "MPI_Send");
      return;
    }
    size_t off = 0;
    for (int r = 0; r < world_; ++r) {
      const size_t n = counts[static_cast<size_t>(r)];
      if (r == root) {
        std::memcpy(full + off, part, n * sizeof(float));
      } else {
        for (size_t at = 0; at < n; at += kChunk)
          check(MPI_Recv(full + off + at, count(n - at), MPI_FLOAT, r, 0, comm_, MPI_STATUS_IGNORE), "MPI_Recv");
      }
      off += n;
    }
  }

  void all_reduce_sum_host(double* values, size_t n) override {
    check(MPI_Allreduce(MPI_IN_PLACE, values, count(n), MPI_DOUBLE, MPI_SUM, comm_), "MPI_Allreduce");
  }

  void barrier() override { check(MPI_Barrier(comm_), "MPI_Barrier"); }

 private:
  static int count(size_t n) { return static_cast<int>(std::min(n, kChunk)); }

  void check_counts(std::span<const size_t> counts, const char* what) const {
    OB_CHECK(counts.size() == static_cast<size_t>(world_), what, ": ", counts.size(), " parts for ", world_, " ranks");
  }

  void check(int rc, const char* what) const {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING] = {};
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fail(what, " failed on rank ", rank_, " of ", world_, ": ", std::string(msg, static_cast<size_t>(len)),
         " (another rank has probably died; see mpirun's message)");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, world_ = 1, local_rank_ = 0;
  bool owns_init_ = false;
};

}  // namespace

std::unique_ptr<Communicator> mpi_communicator(const LaunchEnv& env) { return std::make_unique<MpiCommunicator>(env); }

}  // namespace onebit::dist
