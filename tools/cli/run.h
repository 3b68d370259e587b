// A training run as the CLI drives it: loads the data and model named by the flags, trains with a
// Trainer, evaluates on the test set at every epoch boundary, writes the run folder (steps.csv,
// epochs.csv, log.txt, command.txt, checkpoint.safetensors, model.safetensors) and resumes exactly
// from a checkpoint.
#pragma once
#include <string>

#include "tools/cli/flags.h"

namespace raisin::cli {

// Declares every flag of `raisin train` on `flags`.
void declare_train_flags(Flags& flags);

struct RunSummary {
  std::string out_dir;
  int64_t steps = 0;
  double epochs = 0;
  double test_loss = 0, test_accuracy = 0;
  double final_train_loss = 0;  // mean loss over the last epoch's steps
  double wall_seconds = 0;
};

// Trains as the flags say. With --resume the run's own flags are read back from its checkpoint.
RunSummary run_training(Flags& flags);

}  // namespace raisin::cli
