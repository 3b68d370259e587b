// SIGINT and SIGTERM during training. While an InterruptGuard lives, the first such signal only sets a
// flag that the training loop reads between runs of steps: the run then writes a checkpoint and stops
// by throwing Interrupted (the command exits with 128 + the signal's number, as a shell expects). A
// second signal ends the process at once; the last checkpoint stays intact, since checkpoints are
// written to a temporary file and renamed into place.
#pragma once
#include <string>

#include "engine/error.h"

namespace raisin::cli {

class InterruptGuard {
 public:
  InterruptGuard();   // installs the handlers and clears the flag
  ~InterruptGuard();  // restores the handlers that were there before
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  // The signal received since the guard was made (SIGINT or SIGTERM), or 0.
  static int received();
};

// The run stopped at a signal after writing its checkpoint; the message says where and how to continue.
class Interrupted : public Error {
 public:
  Interrupted(int signal, const std::string& message) : Error(message), signal_(signal) {}
  int signal() const { return signal_; }

 private:
  int signal_;
};

// "SIGINT", "SIGTERM", or "signal N".
std::string signal_name(int signal);

}  // namespace raisin::cli
