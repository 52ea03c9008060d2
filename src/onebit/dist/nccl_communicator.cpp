// The GPU communicator: NCCL collectives on device buffers, one GPU per rank (local_rank). NCCL's
// unique id reaches the ranks through MPI under mpirun, else through the MASTER_ADDR:MASTER_PORT
// rendezvous (rendezvous.h). NVLink multicast (NVLS) is switched off before NCCL starts.
//
// Ordering: collectives run on the communicator's own stream, fenced by events against the compute
// stream (the CUDA backend's, kernels::cuda_stream()): each waits for the compute work issued before
// it. After an ordinary collective the compute stream waits for it at once; after an overlapped
// all-reduce (a gradient bucket launched from the backward's grad-ready hook) it does not, so the
// backward goes on with the layers below while the bucket travels, until join_overlapped() makes the
// compute stream wait for everything the communicator's stream has queued.
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#ifdef ONEBIT_HAVE_MPI
#include <mpi.h>
#endif

#include "onebit/core/error.h"
#include "onebit/dist/backends.h"
#include "onebit/dist/bf16_convert.h"
#include "onebit/dist/rendezvous.h"

namespace onebit::dist {

namespace {

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(what, ": ", cudaGetErrorString(e));
}

// The one device scratch buffer (bf16 copies of gradient pieces, gathered optimizer pieces): larger
// buffers go through it piece by piece, so its size bounds the extra GPU memory of the communicator.
constexpr size_t kStagingBytes = size_t{64} << 20;

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const LaunchEnv& env, cudaStream_t compute)
      : rank_(env.rank), world_(env.world_size), local_rank_(env.local_rank), compute_(compute) {
    // NVLink SHARP / multicast stays off: it reserves memory and has hung multi-GPU jobs on the
    // machines this project is lent (issue 18); set before NCCL reads its environment.
    ::setenv("NCCL_NVLS_ENABLE", "0", 1);
    // The GPU is the current one: the caller chose it (LOCAL_RANK) before the CUDA backend started.
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cuda_check(cudaEventCreateWithFlags(&before_, cudaEventDisableTiming), "cudaEventCreate");
    cuda_check(cudaEventCreateWithFlags(&after_, cudaEventDisableTiming), "cudaEventCreate");

    ncclUniqueId id{};
    if (rank_ == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    if (world_ > 1) share_id(env, id);
    const ncclResult_t r = ncclCommInitRank(&comm_, world_, id, rank_);
    if (r == ncclInvalidUsage)  // NCCL refuses, among other things, two ranks on one GPU
      fail("ncclCommInitRank failed on rank ", rank_, " of ", world_, ": ", ncclGetErrorString(r),
           " (two ranks on one GPU? each rank needs a GPU of its own; NCCL_DEBUG=WARN says more)");
    nccl_check(r, "ncclCommInitRank");
  }

  ~NcclCommunicator() override {
    if (comm_) {
      // After an error the peers may be gone: abort instead of a destroy that waits for them.
      if (std::uncaught_exceptions() > 0) ncclCommAbort(comm_);
      else ncclCommDestroy(comm_);
    }
    if (staging_) cudaFree(staging_);
    if (host_scalars_) cudaFree(host_scalars_);
    cudaEventDestroy(before_);
    cudaEventDestroy(after_);
    cudaStreamDestroy(stream_);
#ifdef ONEBIT_HAVE_MPI
    if (owns_mpi_ && std::uncaught_exceptions() == 0) MPI_Finalize();
#endif
  }

  const char* name() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  int local_rank() const override { return local_rank_; }

  void all_reduce_sum(float* buf, size_t n, Wire wire) override {
    all_reduce_on_stream(buf, n, wire);
    end();
  }

  void all_reduce_sum_overlapped(float* buf, size_t n, Wire wire) override {
    all_reduce_on_stream(buf, n, wire);
    overlapped_ = true;
  }

  void join_overlapped() override {
    if (!overlapped_) return;
    end();
    overlapped_ = false;
  }

  void reduce_scatter_sum(float* buf, std::span<const size_t> counts) override {
    check_counts(counts, "reduce_scatter");
    begin();
    // One ncclReduce per part to its owner, grouped: parts of any size (ncclReduceScatter wants equal ones).
    nccl_check(ncclGroupStart(), "ncclGroupStart");
    size_t off = 0;
    for (int r = 0; r < world_; ++r) {
      const size_t n = counts[static_cast<size_t>(r)];
      nccl_check(ncclReduce(buf + off, buf + off, n, ncclFloat32, ncclSum, r, comm_, stream_), "ncclReduce");
      off += n;
    }
    nccl_check(ncclGroupEnd(), "ncclGroupEnd");
    end();
  }

  void all_gather(float* buf, std::span<const size_t> counts) override {
    check_counts(counts, "all_gather");
    begin();
    nccl_check(ncclGroupStart(), "ncclGroupStart");
    size_t off = 0;
    for (int r = 0; r < world_; ++r) {
      const size_t n = counts[static_cast<size_t>(r)];
      nccl_check(ncclBroadcast(buf + off, buf + off, n, ncclFloat32, r, comm_, stream_), "ncclBroadcast");
      off += n;
    }
    nccl_check(ncclGroupEnd(), "ncclGroupEnd");
    end();
  }

  void broadcast(float* buf, size_t n, int root) override {
    begin();
    nccl_check(ncclBroadcast(buf, buf, n, ncclFloat32, root, comm_, stream_), "ncclBroadcast");
    end();
  }

  void gather_to_host(const float* part, std::span<const size_t> counts, float* full, int root) override {
    check_counts(counts, "gather_to_host");
    // Pieces of at most `piece` values, sent and received alike (NCCL matches them by count), so
    // the root needs one bounded device buffer, not a second copy of the whole optimizer state.
    const size_t piece = kStagingBytes / sizeof(float);
    begin();
    if (rank_ != root) {
      const size_t n = counts[static_cast<size_t>(rank_)];
      for (size_t at = 0; at < n; at += piece)
        nccl_check(ncclSend(part + at, std::min(piece, n - at), ncclFloat32, root, comm_, stream_), "ncclSend");
    } else {
      float* s = static_cast<float*>(staging(kStagingBytes));
      size_t off = 0;
      for (int r = 0; r < world_; ++r) {
        const size_t n = counts[static_cast<size_t>(r)];
        if (r == root) {
          cuda_check(cudaMemcpyAsync(full + off, part, n * sizeof(float), cudaMemcpyDeviceToHost, stream_), "cudaMemcpy");
        } else {
          for (size_t at = 0; at < n; at += piece) {
            const size_t k = std::min(piece, n - at);
            nccl_check(ncclRecv(s, k, ncclFloat32, r, comm_, stream_), "ncclRecv");
            cuda_check(cudaMemcpyAsync(full + off + at, s, k * sizeof(float), cudaMemcpyDeviceToHost, stream_), "cudaMemcpy");
          }
        }
        off += n;
      }
    }
    end();
    cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }

  void all_reduce_sum_host(double* values, size_t n) override {
    const size_t bytes = n * sizeof(double);
    if (host_capacity_ < bytes) {
      if (host_scalars_) cudaFree(host_scalars_);
      cuda_check(cudaMalloc(&host_scalars_, bytes), "cudaMalloc");
      host_capacity_ = bytes;
    }
    begin();
    cuda_check(cudaMemcpyAsync(host_scalars_, values, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpy");
    nccl_check(ncclAllReduce(host_scalars_, host_scalars_, n, ncclFloat64, ncclSum, comm_, stream_), "ncclAllReduce");
    cuda_check(cudaMemcpyAsync(values, host_scalars_, bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpy");
    end();
    cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }

  void barrier() override {
    double zero = 0;
    all_reduce_sum_host(&zero, 1);
  }

 private:
  void share_id(const LaunchEnv& env, ncclUniqueId& id) {
#ifdef ONEBIT_HAVE_MPI
    if (env.launcher == Launcher::Mpirun) {
      int initialized = 0;
      MPI_Initialized(&initialized);
      if (!initialized) {
        int provided = 0;
        MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
        owns_mpi_ = true;
      }
      if (MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS) fail("MPI_Bcast of NCCL's unique id failed");
      return;
    }
#endif
    if (env.launcher != Launcher::Torchrun)
      fail(to_string(env.launcher), ": the NCCL backend needs mpirun (with MPI built in) or torchrun-style "
           "RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT");
    const std::string blob = share_from_rank0(env, std::string(reinterpret_cast<const char*>(&id), sizeof id),
                                              std::chrono::minutes(5));
    if (blob.size() != sizeof id) fail("rendezvous: NCCL unique id of ", blob.size(), " bytes, expected ", sizeof id);
    std::memcpy(&id, blob.data(), sizeof id);
  }

  // The collective waits for the compute stream's work so far...
  void begin() {
    cuda_check(cudaEventRecord(before_, compute_), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(stream_, before_, 0), "cudaStreamWaitEvent");
  }
  // ...and the compute stream's later work waits for the collective (and everything queued on the
  // communicator's stream before it, overlapped all-reduces included).
  void end() {
    cuda_check(cudaEventRecord(after_, stream_), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(compute_, after_, 0), "cudaStreamWaitEvent");
    overlapped_ = false;
  }

  // The all-reduce queued on the communicator's stream after the compute work so far.
  void all_reduce_on_stream(float* buf, size_t n, Wire wire) {
    begin();
    if (wire == Wire::F32) {
      nccl_check(ncclAllReduce(buf, buf, n, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce");
      return;
    }
    // bf16 on the wire, in staging-sized pieces: convert, sum in bf16, convert back. The staging
    // buffer is used in the communicator's stream order, so overlapped buckets may share it.
    const size_t piece = kStagingBytes / sizeof(uint16_t);
    uint16_t* s = static_cast<uint16_t*>(staging(kStagingBytes));
    for (size_t at = 0; at < n; at += piece) {
      const size_t k = std::min(piece, n - at);
      f32_to_bf16(buf + at, s, k, stream_);
      nccl_check(ncclAllReduce(s, s, k, ncclBfloat16, ncclSum, comm_, stream_), "ncclAllReduce");
      bf16_to_f32(s, buf + at, k, stream_);
    }
  }

  void* staging(size_t bytes) {
    if (staging_bytes_ < bytes) {
      if (staging_) cudaFree(staging_);
      cuda_check(cudaMalloc(&staging_, bytes), "cudaMalloc");
      staging_bytes_ = bytes;
    }
    return staging_;
  }

  void check_counts(std::span<const size_t> counts, const char* what) const {
    OB_CHECK(counts.size() == static_cast<size_t>(world_), what, ": ", counts.size(), " parts for ", world_, " ranks");
  }

  void nccl_check(ncclResult_t r, const char* what) const {
    if (r == ncclSuccess || r == ncclInProgress) return;
    fail(what, " failed on rank ", rank_, " of ", world_, ": ", ncclGetErrorString(r),
         r == ncclRemoteError || r == ncclSystemError ? " (another rank has probably died)" : "");
  }

  int rank_, world_, local_rank_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t compute_ = nullptr;  // the CUDA backend's stream
  cudaStream_t stream_ = nullptr;   // the collectives'
  bool overlapped_ = false;         // overlapped all-reduces the compute stream has not waited for
  cudaEvent_t before_ = nullptr, after_ = nullptr;
  void* staging_ = nullptr;
  size_t staging_bytes_ = 0;
  double* host_scalars_ = nullptr;
  size_t host_capacity_ = 0;
  bool owns_mpi_ = false;
};

}  // namespace

std::unique_ptr<Communicator> nccl_communicator(const LaunchEnv& env, void* compute_stream) {
  return std::make_unique<NcclCommunicator>(env, static_cast<cudaStream_t>(compute_stream));
}

}  // namespace onebit::dist
