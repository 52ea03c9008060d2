#include "onebit/dist/communicator.h"

#include <algorithm>

#include "onebit/core/error.h"
#include "onebit/dist/backends.h"
#include "onebit/kernels/backend.h"

namespace onebit::dist {

std::vector<size_t> split_counts(size_t n, int world) {
  OB_CHECK(world >= 1, "split_counts: world size ", world);
  std::vector<size_t> counts(static_cast<size_t>(world));
  size_t start = 0;
  for (int r = 0; r < world; ++r) {
    // The boundary after rank r: its share of n rounded down to 64 values (the last takes the rest).
    size_t end = r + 1 == world ? n : n * static_cast<size_t>(r + 1) / static_cast<size_t>(world) / 64 * 64;
    end = std::max(end, start);
    counts[static_cast<size_t>(r)] = end - start;
    start = end;
  }
  return counts;
}

size_t part_offset(std::span<const size_t> counts, int rank) {
  size_t off = 0;
  for (int r = 0; r < rank; ++r) off += counts[static_cast<size_t>(r)];
  return off;
}

std::unique_ptr<Communicator> open_communicator(Device device, const LaunchEnv& env, kernels::BackendMemory& mem) {
  if (env.backend == "nccl" && device != Device::Cuda)
    fail("ONEBIT_DIST_BACKEND=nccl: NCCL serves GPUs; train with --device cuda, or leave the variable unset");
  if (env.backend == "mpi" && device != Device::Cpu)
    fail("ONEBIT_DIST_BACKEND=mpi: MPI serves CPUs; train with --device cpu, or leave the variable unset");
  if (env.world_size == 1 && env.backend == "auto") return single_process_communicator(mem);
  if (device == Device::Cpu) {
    if (env.launcher == Launcher::Torchrun)
      fail("WORLD_SIZE=", env.world_size, " (a torchrun-style launch) needs the NCCL backend, for training on CUDA "
           "GPUs; on CPUs launch with mpirun -np ", env.world_size, " onebit train ...");
#ifdef ONEBIT_HAVE_MPI
    return mpi_communicator(env);
#else
    fail(to_string(env.launcher), " started ", env.world_size, " rank(s) for MPI, but this onebit was built without "
         "MPI; install libopenmpi-dev (scripts/install-deps.sh) and rebuild with -DONEBIT_MPI=AUTO");
#endif
  }
#ifdef ONEBIT_HAVE_NCCL
  return nccl_communicator(env, kernels::cuda_stream());
#else
  fail(to_string(env.launcher), " started ", env.world_size, " rank(s) for NCCL on CUDA, but this onebit was built "
       "without NCCL (nccl.h and libnccl next to the CUDA toolkit); rebuild where NCCL is installed");
#endif
}

}  // namespace onebit::dist
