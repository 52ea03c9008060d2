#pragma once
// Process-level knobs for training and inference commands: thread counts, Ctrl-C handling, memory.
#include <cstddef>

namespace onebit::train {

// n <= 0: all cores. Sets the OpenMP pool and the CPU kernel backend's thread count (which keeps
// OpenBLAS itself single-threaded inside that pool); returns the count in effect.
int set_num_threads(int n);

// SIGINT/SIGTERM set a flag the training loop polls (it checkpoints and exits cleanly); a second
// signal exits immediately with status 130.
void install_interrupt_handler();
bool interrupt_requested();

// Peak resident set size of this process in bytes (VmHWM), 0 if unknown.
size_t peak_rss_bytes();

}  // namespace onebit::train
