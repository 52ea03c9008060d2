// Launch detection from the environment (mpirun's OMPI_COMM_WORLD_*, torchrun-style RANK/WORLD_SIZE/
// LOCAL_RANK/MASTER_ADDR/MASTER_PORT), its one-line errors naming the variable, and which launches a
// build can serve (open_communicator).
#include <gtest/gtest.h>

#include <map>
#include <tuple>
#include <string>

#include "onebit/core/error.h"
#include "onebit/dist/communicator.h"
#include "onebit/dist/launch_env.h"

using namespace onebit;
using namespace onebit::dist;

namespace {

LaunchEnv detect(const std::map<std::string, std::string>& env) {
  return detect_launch([&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& env) {
  try {
    detect(env);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(LaunchEnv, NoLauncherIsOneProcess) {
  const LaunchEnv e = detect({});
  EXPECT_EQ(e.launcher, Launcher::Single);
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.rank, 0);
}

TEST(LaunchEnv, Mpirun) {
  const LaunchEnv e = detect({{"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_RANK", "5"},
                              {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"},
                              // mpirun inside a torchrun-style allocation: mpirun's variables win.
                              {"WORLD_SIZE", "2"}, {"RANK", "0"}});
  EXPECT_EQ(e.launcher, Launcher::Mpirun);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 4);
}

TEST(LaunchEnv, TorchrunStyle) {
  const LaunchEnv e = detect({{"WORLD_SIZE", "16"}, {"RANK", "9"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "8"},
                              {"MASTER_ADDR", "node-0"}, {"MASTER_PORT", "29500"}});
  EXPECT_EQ(e.launcher, Launcher::Torchrun);
  EXPECT_EQ(e.world_size, 16);
  EXPECT_EQ(e.rank, 9);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 8);
  EXPECT_EQ(e.master_addr, "node-0");
  EXPECT_EQ(e.master_port, 29500);
  // LOCAL_RANK defaults to the rank on its host when only the world is given.
  const LaunchEnv one_host = detect({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1"}});
  EXPECT_EQ(one_host.local_rank, 3);
  // A world of one needs no rendezvous.
  EXPECT_EQ(detect({{"WORLD_SIZE", "1"}, {"RANK", "0"}}).world_size, 1);
}

TEST(LaunchEnv, BadValuesNameTheVariable) {
  EXPECT_EQ(error_of({{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}),
            "environment variable RANK is not set (torchrun-style launch)");
  EXPECT_EQ(error_of({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}),
            "environment variable RANK=\"2\": expected an integer in [0, 1]");
  EXPECT_EQ(error_of({{"WORLD_SIZE", "two"}}), "environment variable WORLD_SIZE=\"two\": expected an integer in [1, 1048576]");
  EXPECT_EQ(error_of({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_PORT", "1"}}),
            "environment variable MASTER_ADDR is not set (torchrun-style launch of 2 ranks)");
  EXPECT_EQ(error_of({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}}),
            "environment variable MASTER_PORT=\"70000\": expected an integer in [1, 65535]");
  EXPECT_EQ(error_of({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "1\n"}}),
            "environment variable OMPI_COMM_WORLD_RANK=\"1\\n\": expected an integer in [0, 1]");
  EXPECT_EQ(error_of({{"OMPI_COMM_WORLD_SIZE", "2"}}), "environment variable OMPI_COMM_WORLD_RANK is not set (mpirun launch)");
}

TEST(LaunchEnv, BackendAndWireOverrides) {
  const LaunchEnv plain = detect({});
  EXPECT_EQ(plain.backend, "auto");
  EXPECT_EQ(plain.grad_wire, "auto");
  const LaunchEnv forced =
      detect({{"WORLD_SIZE", "1"}, {"RANK", "0"}, {"ONEBIT_DIST_BACKEND", "nccl"}, {"ONEBIT_GRAD_WIRE", "f32"}});
  EXPECT_EQ(forced.launcher, Launcher::Torchrun);
  EXPECT_EQ(forced.world_size, 1);
  EXPECT_EQ(forced.backend, "nccl");
  EXPECT_EQ(forced.grad_wire, "f32");
  EXPECT_EQ(error_of({{"ONEBIT_DIST_BACKEND", "gloo"}}),
            "environment variable ONEBIT_DIST_BACKEND=\"gloo\": expected one of auto, nccl, mpi");
  EXPECT_EQ(error_of({{"ONEBIT_GRAD_WIRE", "fp8\x01"}}),
            "environment variable ONEBIT_GRAD_WIRE=\"fp8\\x01\": expected one of auto, bf16, f32");
}

TEST(GpuForRank, LocalRankPicksTheGpuAndRanksNeverShareOne) {
  LaunchEnv e = detect({{"WORLD_SIZE", "16"}, {"RANK", "9"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "8"},
                        {"MASTER_ADDR", "node-0"}, {"MASTER_PORT", "29500"}});
  EXPECT_EQ(gpu_for_rank(e, 8), 1);
  EXPECT_EQ(gpu_for_rank(LaunchEnv{}, 1), 0);
  auto error = [](const LaunchEnv& env, int visible) -> std::string {
    try {
      gpu_for_rank(env, visible);
    } catch (const Error& x) {
      return x.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(error(e, 4),
            "8 ranks on this host (torchrun-style environment) but 4 GPUs are visible: two ranks would share a GPU; "
            "start at most 4 per host (one per GPU; a launcher that gives each rank its own GPU through "
            "CUDA_VISIBLE_DEVICES sets LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 for each)");
  const LaunchEnv two = detect({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "1"},
                                {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}});
  EXPECT_NE(error(two, 1).find("2 ranks on this host (mpirun) but 1 GPU is visible"), std::string::npos);
  EXPECT_NE(error(LaunchEnv{}, 0).find("no CUDA device is visible"), std::string::npos);
  // Without LOCAL_WORLD_SIZE (a multi-host script setting RANK, WORLD_SIZE and LOCAL_RANK only) the
  // local rank alone decides: rank 9 of 16 is local rank 1 of its host's 8 GPUs; local rank 8 is not.
  const LaunchEnv slurm = detect({{"WORLD_SIZE", "16"}, {"RANK", "9"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "h"},
                                  {"MASTER_PORT", "1"}});
  EXPECT_EQ(gpu_for_rank(slurm, 8), 1);
  const LaunchEnv ninth = detect({{"WORLD_SIZE", "16"}, {"RANK", "8"}, {"LOCAL_RANK", "8"}, {"MASTER_ADDR", "h"},
                                  {"MASTER_PORT", "1"}});
  EXPECT_NE(error(ninth, 8).find("local rank 8 (torchrun-style environment) but 8 GPUs are visible: two ranks would "
                                 "share a GPU"),
            std::string::npos)
      << error(ninth, 8);
  // A rank pinned to its own GPU by its launcher: one local rank, device 0.
  const LaunchEnv pinned = detect({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "1"},
                                   {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}});
  EXPECT_EQ(gpu_for_rank(pinned, 1), 0);
}

TEST(OpenCommunicator, AForcedBackendMustServeTheDevice) {
  LaunchEnv nccl;
  nccl.backend = "nccl";
  LaunchEnv mpi;
  mpi.backend = "mpi";
  for (auto [env, device, needle] : {std::tuple{nccl, Device::Cpu, "ONEBIT_DIST_BACKEND=nccl: NCCL serves GPUs"},
                                     std::tuple{mpi, Device::Cuda, "ONEBIT_DIST_BACKEND=mpi: MPI serves CPUs"}}) {
    try {
      open_communicator(device, env, kernels::cpu_ops());
      ADD_FAILURE() << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

TEST(OpenCommunicator, WorldOfOneAndLaunchesThisBuildCannotServe) {
  auto single = open_communicator(Device::Cpu, LaunchEnv{}, kernels::cpu_ops());
  EXPECT_STREQ(single->name(), "single");
  EXPECT_EQ(single->world_size(), 1);
  LaunchEnv torchrun;
  torchrun.launcher = Launcher::Torchrun;
  torchrun.world_size = 2;
  try {
    open_communicator(Device::Cpu, torchrun, kernels::cpu_ops());
    ADD_FAILURE() << "a torchrun-style launch on the CPU must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("on CPUs launch with mpirun -np 2"), std::string::npos) << e.what();
  }
#ifndef ONEBIT_HAVE_NCCL
  try {
    open_communicator(Device::Cuda, torchrun, kernels::cpu_ops());
    ADD_FAILURE() << "CUDA ranks without NCCL must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("built without NCCL"), std::string::npos) << e.what();
  }
#endif
}

TEST(SingleProcess, CollectivesLeaveTheDataAndGatherCopies) {
  auto c = single_process_communicator(kernels::cpu_ops());
  std::vector<float> v = {1.5f, -2.0f, 3.25f};
  const std::vector<float> before = v;
  const size_t counts[] = {3};
  c->all_reduce_sum(v.data(), v.size(), Wire::BF16);
  c->reduce_scatter_sum(v.data(), counts);
  c->all_gather(v.data(), counts);
  c->broadcast(v.data(), v.size(), 0);
  EXPECT_EQ(v, before);
  std::vector<float> full(3);
  c->gather_to_host(v.data(), counts, full.data(), 0);
  EXPECT_EQ(full, before);
  double h[2] = {1.0, 2.0};
  c->all_reduce_sum_host(h, 2);
  EXPECT_EQ(h[1], 2.0);
}
