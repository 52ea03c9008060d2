#pragma once
// The communicators that need a collective library, each compiled only where its library was found
// (src/onebit/dist/CMakeLists.txt): open_communicator() picks among them.
#include <memory>

#include "onebit/dist/communicator.h"

namespace onebit::dist {

#ifdef ONEBIT_HAVE_MPI
// MPI over the CPUs (host buffers). Initializes MPI (and finalizes it when destroyed).
std::unique_ptr<Communicator> mpi_communicator(const LaunchEnv& env);
#endif

#ifdef ONEBIT_HAVE_NCCL
// NCCL over CUDA GPUs (device buffers) on the current GPU (the caller selected it): shares NCCL's
// unique id through MPI under mpirun, else through the MASTER_ADDR:MASTER_PORT rendezvous (a world
// of one needs neither). Collectives are ordered against `compute_stream` (a cudaStream_t: the CUDA
// backend's) and run on a stream of their own. Sets NCCL_NVLS_ENABLE=0.
std::unique_ptr<Communicator> nccl_communicator(const LaunchEnv& env, void* compute_stream);
#endif

}  // namespace onebit::dist
