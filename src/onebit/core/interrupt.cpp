#include "onebit/core/interrupt.h"

#include <unistd.h>

#include <csignal>

namespace onebit {

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

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupt_requested() { return g_interrupts != 0; }

void clear_interrupt() { g_interrupts = 0; }

}  // namespace onebit
