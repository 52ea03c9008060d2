#pragma once
// Ctrl-C handling for long-running commands: SIGINT/SIGTERM set a flag that the training loop polls
// (it checkpoints and exits cleanly); a second signal exits immediately with status 130.
namespace onebit {

void install_interrupt_handler();
bool interrupt_requested();

}  // namespace onebit
