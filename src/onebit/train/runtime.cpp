#include "onebit/train/runtime.h"

#include <omp.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "onebit/kernels/kernels.h"

namespace onebit::train {

namespace {
volatile std::sig_atomic_t g_interrupts = 0;

extern "C" void on_interrupt(int) {
  if (g_interrupts > 0) {
    const char msg[] = "\nonebit: interrupted again, exiting without a checkpoint\n";
    ssize_t r = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
    ::_exit(130);
  }
  g_interrupts = 1;
}
}  // namespace

int set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // The CPU backend takes all its parallelism from one OpenMP pool and pins OpenBLAS to one thread
  // inside it (see kernels/cpu/fast_gemm.cpp), so the count goes to the backend, not to OpenBLAS.
  omp_set_num_threads(n);
  kernels::cpu_ops().set_num_threads(n);
  return n;
}

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupt_requested() { return g_interrupts != 0; }

size_t peak_rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  size_t kb = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmHWM:", 6) == 0) {
      std::sscanf(line + 6, "%zu", &kb);
      break;
    }
  }
  std::fclose(f);
  return kb * 1024;
}

}  // namespace onebit::train
