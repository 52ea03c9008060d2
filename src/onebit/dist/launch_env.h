#pragma once
// How this process was launched, read from the environment the launcher set:
//   mpirun (OpenMPI): OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK / _LOCAL_SIZE
//   torchrun-style (torchrun, Slurm scripts): RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
//     MASTER_ADDR, MASTER_PORT (rank 0 listens there to hand out NCCL's unique id)
//   neither: a single process.
// mpirun's variables win when both are present (mpirun may run inside a torchrun-style allocation).
// Two overrides, read here too:
//   ONEBIT_DIST_BACKEND=auto|nccl|mpi  the communicator: auto picks by launch and device (a world of
//     one runs alone); nccl or mpi forces that one, also for a world of one (how the tests run the
//     NCCL path on one GPU)
//   ONEBIT_GRAD_WIRE=auto|bf16|f32     how gradient buckets travel: auto is bf16 on NCCL, f32 on MPI
#include <functional>
#include <string>

namespace onebit::dist {

enum class Launcher { Single, Mpirun, Torchrun };

struct LaunchEnv {
  Launcher launcher = Launcher::Single;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  bool local_world_size_given = false;  // the launcher said it (else local_world_size is a default)
  std::string master_addr;  // torchrun-style only
  int master_port = 0;
  std::string backend = "auto";    // ONEBIT_DIST_BACKEND
  std::string grad_wire = "auto";  // ONEBIT_GRAD_WIRE
};

// Reads the variables through `getenv` (the process environment unless given); a malformed or
// inconsistent value fails with one line naming the variable.
LaunchEnv detect_launch(const std::function<const char*(const char*)>& getenv = {});

const char* to_string(Launcher l);

// The GPU of this rank among the `visible` ones: LOCAL_RANK, one GPU per rank of a host. Fails with
// one line when LOCAL_RANK is not a visible GPU, when the launcher says the host has more ranks
// than visible GPUs (two ranks would share one: every rank fails at once instead of some waiting
// for the others), or when none is visible.
int gpu_for_rank(const LaunchEnv& env, int visible);

}  // namespace onebit::dist
