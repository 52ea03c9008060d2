#pragma once
// Collectives across the ranks of a data-parallel job (DESIGN.md "dist/"). One interface, three
// implementations: a single process (world of 1, no traffic), MPI over the CPUs (OpenMPI; what CI
// tests with `mpirun -np 2`) and NCCL over CUDA GPUs. No home-made transport: the only socket onebit
// opens itself is the rendezvous that hands NCCL's unique id to the ranks (rendezvous.h).
//
// Buffers are in the memory of the backend the model runs on (host memory for the single-process
// and MPI communicators, the GPU for NCCL). Collectives are stream-ordered like NCCL's: each one sees
// all the work issued before it on the compute stream, and work issued after it sees its result. On
// the CPU that simply means they are blocking calls.
//
// Every rank must make the same calls in the same order with the same sizes; a rank that died or
// left makes the others fail with one line naming the collective (or mpirun ends the job).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "onebit/dist/launch_env.h"
#include "onebit/kernels/kernels.h"

namespace onebit::dist {

// What a gradient bucket travels as. BF16 halves the bytes on the wire: NCCL sums the bf16 values
// natively (partial sums rounded to bf16 at each hop, as PyTorch DDP's bf16 compression hook does)
// and the f32 gradient arena gets the result back. The MPI path always sends f32.
enum class Wire { F32, BF16 };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual const char* name() const = 0;  // "single", "mpi", "nccl"
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual int local_rank() const = 0;  // this rank's index on its host (its GPU)

  // buf[0, n) = the sum over ranks of everyone's buf[0, n).
  virtual void all_reduce_sum(float* buf, size_t n, Wire wire = Wire::F32) = 0;
  // The same sum, overlapped with compute: it sees the compute stream's work issued before the call,
  // but work issued after it does not wait for it (and must leave buf alone) until join_overlapped(),
  // after which the compute stream sees every overlapped sum. How a bucket's all-reduce runs while
  // the backward pass goes on with the layers below. The CPU backends block, as all_reduce_sum.
  virtual void all_reduce_sum_overlapped(float* buf, size_t n, Wire wire) { all_reduce_sum(buf, n, wire); }
  virtual void join_overlapped() {}
  // buf holds world_size parts laid end to end, counts[r] values for rank r. Afterwards this rank's
  // part holds the sum over ranks of that part; the other parts are left unspecified.
  virtual void reduce_scatter_sum(float* buf, std::span<const size_t> counts) = 0;
  // The same layout: afterwards every rank's buf holds every rank's own part (in place).
  virtual void all_gather(float* buf, std::span<const size_t> counts) = 0;
  // buf[0, n) = root's buf[0, n).
  virtual void broadcast(float* buf, size_t n, int root) = 0;
  // Each rank's part (counts[rank] values in backend memory) into the root's host array `full`
  // (sum of counts values; read only on the root): the optimizer state for a checkpoint.
  virtual void gather_to_host(const float* part, std::span<const size_t> counts, float* full, int root) = 0;
  // Host scalars (the step's loss, a stop flag): summed over ranks, in f64, the same on every rank.
  virtual void all_reduce_sum_host(double* values, size_t n) = 0;
  virtual void barrier() = 0;
};

// The devices a communicator can serve: the CPU backends (MPI) or CUDA GPUs (NCCL).
enum class Device { Cpu, Cuda };

// The communicator for this process as launched (detect_launch()): a world of one runs without any
// collective library; mpirun on the CPU gets MPI; mpirun or torchrun-style variables on CUDA get
// NCCL (on the GPU made current before, kernels::select_cuda_device, its collectives ordered against
// kernels::cuda_stream()); env.backend forces NCCL or MPI, also for a world of one. `mem` is the
// backend memory the buffers live in. A launch this build cannot serve (mpirun without MPI built in,
// torchrun-style variables on the CPU, a forced backend for the other device) fails with one line
// saying what to do.
std::unique_ptr<Communicator> open_communicator(Device device, const LaunchEnv& env, kernels::BackendMemory& mem);

// The single-process communicator: every collective leaves the data as it is.
std::unique_ptr<Communicator> single_process_communicator(kernels::BackendMemory& mem);

// Contiguous, near-equal parts of n values for `world` ranks (each a multiple of 64 values except
// the last, so vectorized kernels see aligned starts): counts[r]; offsets are their prefix sums.
std::vector<size_t> split_counts(size_t n, int world);
size_t part_offset(std::span<const size_t> counts, int rank);

}  // namespace onebit::dist
