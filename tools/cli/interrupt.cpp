// The SIGINT/SIGTERM handlers of a training run (interrupt.h).
#include "tools/cli/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace raisin::cli {

namespace {

std::atomic<int> received_signal{0};
struct sigaction previous_int, previous_term;

// Async-signal-safe: an atomic store, write(2) and sigaction only.
void on_signal(int signal) {
  received_signal.store(signal);
  constexpr char kNote[] =
      "\nraisin: interrupted; finishing the queued steps and writing a checkpoint (again to stop at once)\n";
  (void)!::write(STDERR_FILENO, kNote, sizeof kNote - 1);
  struct sigaction plain {};
  plain.sa_handler = SIG_DFL;
  sigemptyset(&plain.sa_mask);
  ::sigaction(signal, &plain, nullptr);  // the next one ends the process
}

}  // namespace

InterruptGuard::InterruptGuard() {
  received_signal.store(0);
  struct sigaction action {};
  action.sa_handler = &on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // reads and writes in progress carry on
  ::sigaction(SIGINT, &action, &previous_int);
  ::sigaction(SIGTERM, &action, &previous_term);
}

InterruptGuard::~InterruptGuard() {
  ::sigaction(SIGINT, &previous_int, nullptr);
  ::sigaction(SIGTERM, &previous_term, nullptr);
}

int InterruptGuard::received() { return received_signal.load(); }

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

}  // namespace raisin::cli
