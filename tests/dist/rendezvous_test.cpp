// The torchrun-style bootstrap over TCP on the loopback address: rank 0 hands a blob (NCCL's unique
// id in production) to every other rank, whichever starts first; a stray connection does not
// disturb it; a missing rank 0 or a duplicate rank fails with one line naming MASTER_ADDR:MASTER_PORT.
// Ranks are forked processes, as a launcher would start them.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/dist/rendezvous.h"
#include "process.h"
#include "test_seed.h"

using namespace onebit;
using namespace onebit::dist;
using namespace std::chrono_literals;

namespace {

// A port that was free a moment ago on 127.0.0.1.
int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

LaunchEnv env_for(int rank, int world, int port) {
  LaunchEnv e;
  e.launcher = Launcher::Torchrun;
  e.rank = rank;
  e.world_size = world;
  e.master_addr = "127.0.0.1";
  e.master_port = port;
  return e;
}

// A forked rank: exits 0 when it received `expected`, 1 on a different blob, 2 on an error.
pid_t start_rank(int rank, int world, int port, const std::string& expected) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    try {
      const std::string got = share_from_rank0(env_for(rank, world, port), "", 20s);
      ::_exit(got == expected ? 0 : 1);
    } catch (...) {
      ::_exit(2);
    }
  }
  return pid;
}

std::string random_blob(Rng& rng, size_t n) {
  std::string b(n, '\0');
  for (char& c : b) c = static_cast<char>(rng.uniform_int(256));  // NUL bytes included: it is binary
  return b;
}

}  // namespace

TEST(Rendezvous, EveryRankGetsRank0sBlobWhoeverStartsFirst) {
  Rng rng(test::test_seed());
  const std::string blob = random_blob(rng, 128);
  const int port = free_port(), world = 4;
  std::vector<pid_t> peers;
  for (int r = 1; r < world; ++r) peers.push_back(start_rank(r, world, port, blob));
  // The other ranks are already retrying when rank 0 starts listening.
  std::this_thread::sleep_for(200ms);
  // A stray connection that says nothing useful is dropped, not taken for a rank.
  std::thread stray([port] {
    std::this_thread::sleep_for(50ms);
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      const char junk[] = "GET / HTTP/1.0\r\n\r\n";
      (void)!::write(s, junk, sizeof junk - 1);
    }
    ::close(s);
  });
  EXPECT_EQ(share_from_rank0(env_for(0, world, port), blob, 20s), blob);
  stray.join();
  for (pid_t p : peers) EXPECT_EQ(test::wait_status(p), 0);
}

TEST(Rendezvous, NoRank0FailsNamingTheAddress) {
  const int port = free_port();
  try {
    share_from_rank0(env_for(1, 2, port), "", 300ms);
    ADD_FAILURE() << "no rank 0 listening must fail";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rendezvous at MASTER_ADDR:MASTER_PORT 127.0.0.1:" + std::to_string(port)), std::string::npos) << msg;
    EXPECT_NE(msg.find("rank 1 could not reach rank 0 in time"), std::string::npos) << msg;
  }
}

TEST(Rendezvous, MissingRanksAndDuplicateRanksFailOnRank0) {
  const int port = free_port();
  try {
    share_from_rank0(env_for(0, 3, port), "id", 300ms);
    ADD_FAILURE() << "rank 0 alone must time out";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 of 2 ranks did not connect in time"), std::string::npos) << e.what();
  }
  const int port2 = free_port();
  const pid_t a = start_rank(1, 3, port2, "id"), b = start_rank(1, 3, port2, "id");
  try {
    share_from_rank0(env_for(0, 3, port2), "id", 20s);
    ADD_FAILURE() << "two ranks 1 must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a peer says it is rank 1"), std::string::npos) << e.what();
  }
  // One of the two got the id, the other lost its connection when rank 0 gave up.
  const int ca = test::wait_status(a), cb = test::wait_status(b);
  EXPECT_TRUE((ca == 0 && cb == 2) || (ca == 2 && cb == 0)) << ca << " " << cb;
}
