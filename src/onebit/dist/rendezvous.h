#pragma once
// The bootstrap of a torchrun-style launch: rank 0 listens on MASTER_ADDR:MASTER_PORT and hands a
// small blob (NCCL's unique id) to every other rank, which connects, retrying until the deadline
// (rank 0 may start later). Only this handshake uses the socket; the collectives run over NCCL.
#include <chrono>
#include <string>

#include "onebit/dist/launch_env.h"

namespace onebit::dist {

// On rank 0: serves `blob` to the world_size - 1 other ranks and returns it. On the others: returns
// rank 0's blob. Fails with one line naming MASTER_ADDR:MASTER_PORT after `timeout` or on a bad peer.
std::string share_from_rank0(const LaunchEnv& env, const std::string& blob, std::chrono::milliseconds timeout);

}  // namespace onebit::dist
