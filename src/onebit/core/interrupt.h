#pragma once
// Ctrl-C handling for long-running commands: SIGINT/SIGTERM set a flag that the training loop polls
// (it checkpoints and exits cleanly); a second signal exits immediately with status 130.
namespace onebit {

void install_interrupt_handler();
bool interrupt_requested();
// Forgets a handled interrupt, so that the next Ctrl-C again only sets the flag (chat: Ctrl-C stops
// one reply, not the program).
void clear_interrupt();

}  // namespace onebit
