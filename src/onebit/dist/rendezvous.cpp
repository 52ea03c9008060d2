#include "onebit/dist/rendezvous.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "onebit/core/error.h"

namespace onebit::dist {

namespace {

using Clock = std::chrono::steady_clock;
// Every message starts with this, so a stray connection (a port scanner, another job on the same
// port) is told apart from a rank.
constexpr uint32_t kMagic = 0x0b17d157;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { if (fd_ >= 0) ::close(fd_); }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept { std::swap(fd_, o.fd_); return *this; }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string where(const LaunchEnv& e) { return cat("rendezvous at MASTER_ADDR:MASTER_PORT ", printable(e.master_addr), ":", e.master_port); }

int ms_left(Clock::time_point deadline) {
  return static_cast<int>(std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
}

// Waits until fd is readable/writable or the deadline passes.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int r = ::poll(&p, 1, ms_left(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool send_all(int fd, const void* data, size_t n, Clock::time_point deadline) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    if (!wait_for(fd, POLLOUT, deadline)) return false;
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool recv_all(int fd, void* data, size_t n, Clock::time_point deadline) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    if (!wait_for(fd, POLLIN, deadline)) return false;
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

addrinfo* resolve(const LaunchEnv& e, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(e.master_port);
  const int rc = ::getaddrinfo(e.master_addr.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) fail(where(e), ": cannot resolve the address (", ::gai_strerror(rc), ")");
  return res;
}

std::string serve(const LaunchEnv& e, const std::string& blob, Clock::time_point deadline) {
  addrinfo* res = resolve(e, true);
  Fd listener;
  std::string last_error = "no address";
  for (addrinfo* a = res; a; a = a->ai_next) {
    Fd s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (s.get() < 0) continue;
    const int one = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(s.get(), a->ai_addr, a->ai_addrlen) == 0 && ::listen(s.get(), 128) == 0) {
      listener = std::move(s);
      break;
    }
    last_error = std::strerror(errno);
  }
  ::freeaddrinfo(res);
  if (listener.get() < 0) fail(where(e), ": rank 0 cannot listen there (", last_error, ")");
  std::vector<bool> served(static_cast<size_t>(e.world_size), false);
  int left = e.world_size - 1;
  while (left > 0) {
    if (!wait_for(listener.get(), POLLIN, deadline))
      fail(where(e), ": ", left, " of ", e.world_size - 1, " ranks did not connect in time");
    Fd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (c.get() < 0) continue;
    uint32_t hello[2] = {0, 0};  // magic, rank
    // A peer gets a few seconds to say who it is, so a silent stray connection cannot stall the rest.
    const auto hello_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(5));
    if (!recv_all(c.get(), hello, sizeof hello, hello_deadline) || hello[0] != kMagic) continue;
    const uint32_t r = hello[1];
    if (r == 0 || r >= static_cast<uint32_t>(e.world_size) || served[r])
      fail(where(e), ": a peer says it is rank ", r, " (world size ", e.world_size, ", ranks 1..", e.world_size - 1,
           " expected once each); check RANK and WORLD_SIZE");
    const uint32_t head[2] = {kMagic, static_cast<uint32_t>(blob.size())};
    if (!send_all(c.get(), head, sizeof head, deadline) || !send_all(c.get(), blob.data(), blob.size(), deadline))
      fail(where(e), ": sending to rank ", r, " failed");
    served[r] = true;
    --left;
  }
  return blob;
}

std::string fetch(const LaunchEnv& e, Clock::time_point deadline) {
  std::string last_error;
  while (Clock::now() < deadline) {
    addrinfo* res = resolve(e, false);
    for (addrinfo* a = res; a; a = a->ai_next) {
      Fd s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
      if (s.get() < 0) continue;
      if (::connect(s.get(), a->ai_addr, a->ai_addrlen) != 0) {
        last_error = std::strerror(errno);
        continue;
      }
      ::freeaddrinfo(res);
      const uint32_t hello[2] = {kMagic, static_cast<uint32_t>(e.rank)};
      uint32_t head[2] = {0, 0};
      if (!send_all(s.get(), hello, sizeof hello, deadline) || !recv_all(s.get(), head, sizeof head, deadline))
        fail(where(e), ": rank 0 closed the connection (is another job using this port?)");
      if (head[0] != kMagic || head[1] > (1u << 20)) fail(where(e), ": the listener there is not onebit's rank 0");
      std::string blob(head[1], '\0');
      if (!recv_all(s.get(), blob.data(), blob.size(), deadline)) fail(where(e), ": rank 0 closed the connection");
      return blob;
    }
    ::freeaddrinfo(res);
    // Rank 0 may not be listening yet.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  fail(where(e), ": rank ", e.rank, " could not reach rank 0 in time (", last_error.empty() ? "timed out" : last_error, ")");
}

}  // namespace

std::string share_from_rank0(const LaunchEnv& env, const std::string& blob, std::chrono::milliseconds timeout) {
  if (env.world_size == 1) return blob;
  OB_CHECK(!env.master_addr.empty() && env.master_port > 0, "rendezvous: MASTER_ADDR/MASTER_PORT are not set");
  const auto deadline = Clock::now() + timeout;
  return env.rank == 0 ? serve(env, blob, deadline) : fetch(env, deadline);
}

}  // namespace onebit::dist
