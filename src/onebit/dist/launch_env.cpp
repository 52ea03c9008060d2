#include "onebit/dist/launch_env.h"

#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <optional>

#include "onebit/core/error.h"

namespace onebit::dist {

namespace {

using Getenv = std::function<const char*(const char*)>;

// An integer variable in [lo, hi]; nullopt when unset.
std::optional<int> int_var(const Getenv& get, const char* name, long lo, long hi) {
  const char* v = get(name);
  if (!v) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || errno != 0 || x < lo || x > hi)
    fail("environment variable ", name, "=\"", printable(v), "\": expected an integer in [", lo, ", ", hi, "]");
  return static_cast<int>(x);
}

int required_int(const Getenv& get, const char* name, long lo, long hi, const char* launcher) {
  auto v = int_var(get, name, lo, hi);
  if (!v) fail("environment variable ", name, " is not set (", launcher, " launch)");
  return *v;
}

constexpr long kMaxWorld = 1 << 20;

LaunchEnv from_mpirun(const Getenv& get) {
  LaunchEnv e;
  e.launcher = Launcher::Mpirun;
  e.world_size = required_int(get, "OMPI_COMM_WORLD_SIZE", 1, kMaxWorld, "mpirun");
  e.rank = required_int(get, "OMPI_COMM_WORLD_RANK", 0, e.world_size - 1, "mpirun");
  e.local_world_size_given = get("OMPI_COMM_WORLD_LOCAL_SIZE") != nullptr;
  e.local_world_size = int_var(get, "OMPI_COMM_WORLD_LOCAL_SIZE", 1, e.world_size).value_or(1);
  e.local_rank = int_var(get, "OMPI_COMM_WORLD_LOCAL_RANK", 0, e.local_world_size - 1).value_or(0);
  return e;
}

LaunchEnv from_torchrun(const Getenv& get) {
  LaunchEnv e;
  e.launcher = Launcher::Torchrun;
  e.world_size = required_int(get, "WORLD_SIZE", 1, kMaxWorld, "torchrun-style");
  e.rank = required_int(get, "RANK", 0, e.world_size - 1, "torchrun-style");
  e.local_world_size_given = get("LOCAL_WORLD_SIZE") != nullptr;
  e.local_world_size = int_var(get, "LOCAL_WORLD_SIZE", 1, e.world_size).value_or(e.world_size);
  e.local_rank = int_var(get, "LOCAL_RANK", 0, e.local_world_size - 1).value_or(e.rank % e.local_world_size);
  if (e.world_size > 1) {
    const char* addr = get("MASTER_ADDR");
    if (!addr || !*addr) fail("environment variable MASTER_ADDR is not set (torchrun-style launch of ", e.world_size, " ranks)");
    e.master_addr = addr;
    e.master_port = required_int(get, "MASTER_PORT", 1, 65535, "torchrun-style");
  }
  return e;
}

// A variable that must be one of `allowed` (the first is the default when unset).
std::string choice_var(const Getenv& get, const char* name, std::initializer_list<const char*> allowed) {
  const char* v = get(name);
  if (!v) return *allowed.begin();
  std::string list;
  for (const char* a : allowed) {
    if (std::strcmp(v, a) == 0) return a;
    list += list.empty() ? a : cat(", ", a);
  }
  fail("environment variable ", name, "=\"", printable(v), "\": expected one of ", list);
}

}  // namespace

LaunchEnv detect_launch(const Getenv& getenv_fn) {
  const Getenv get = getenv_fn ? getenv_fn : Getenv([](const char* n) { return std::getenv(n); });
  LaunchEnv e = get("OMPI_COMM_WORLD_SIZE") ? from_mpirun(get) : get("WORLD_SIZE") ? from_torchrun(get) : LaunchEnv{};
  e.backend = choice_var(get, "ONEBIT_DIST_BACKEND", {"auto", "nccl", "mpi"});
  e.grad_wire = choice_var(get, "ONEBIT_GRAD_WIRE", {"auto", "bf16", "f32"});
  return e;
}

int gpu_for_rank(const LaunchEnv& env, int visible) {
  if (visible <= 0) fail("rank ", env.rank, ": no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
  const char* hint = " (one per GPU; a launcher that gives each rank its own GPU through CUDA_VISIBLE_DEVICES sets "
                     "LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 for each)";
  const char* gpus = visible == 1 ? " GPU is" : " GPUs are";
  if (env.local_world_size_given && env.local_world_size > visible)
    fail(env.local_world_size, " ranks on this host (", to_string(env.launcher), ") but ", visible, gpus,
         " visible: two ranks would share a GPU; start at most ", visible, " per host", hint);
  if (env.local_rank >= visible)
    fail("local rank ", env.local_rank, " (", to_string(env.launcher), ") but ", visible, gpus,
         " visible: two ranks would share a GPU; start at most ", visible, " per host", hint);
  return env.local_rank;
}

const char* to_string(Launcher l) {
  switch (l) {
    case Launcher::Single: return "single process";
    case Launcher::Mpirun: return "mpirun";
    case Launcher::Torchrun: return "torchrun-style environment";
  }
  return "?";
}

}  // namespace onebit::dist
