// A training run as the CLI drives it: loads the data and model named by the flags, trains with a
// Trainer, evaluates on the test set at every epoch boundary and on the whole training set every
// --eval-train-every epochs, writes the run folder (steps.csv, epochs.csv, train_eval.csv, log.txt,
// command.txt, checkpoint.safetensors, model.safetensors) and resumes exactly from a checkpoint.
#pragma once
#include <cmath>
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
  // Loss and accuracy over the whole training set at the end (evaluation mode; --eval-train-every > 0).
  double final_full_train_loss = NAN, final_full_train_accuracy = NAN;
  double wall_seconds = 0;      // training time: evaluations and checkpoint writes excluded
};

// Trains as the flags say. With --resume the run's own flags are read back from its checkpoint.
RunSummary run_training(Flags& flags);

}  // namespace raisin::cli
