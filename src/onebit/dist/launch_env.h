#pragma once
// How this process was launched, read from the environment the launcher set:
//   mpirun (OpenMPI): OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK / _LOCAL_SIZE
//   torchrun-style (torchrun, Slurm scripts): RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
//     MASTER_ADDR, MASTER_PORT (rank 0 listens there to hand out NCCL's unique id)
//   neither: a single process.
// mpirun's variables win when both are present (mpirun may run inside a torchrun-style allocation).
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
  std::string master_addr;  // torchrun-style only
  int master_port = 0;
};

// Reads the variables through `getenv` (the process environment unless given); a malformed or
// inconsistent value fails with one line naming the variable.
LaunchEnv detect_launch(const std::function<const char*(const char*)>& getenv = {});

const char* to_string(Launcher l);

}  // namespace onebit::dist
