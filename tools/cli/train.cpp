// `raisin train`: trains a model and prints where its run folder is.
#include <cstdio>

#include "tools/cli/commands.h"
#include "tools/cli/run.h"

namespace raisin::cli {

int train_command(int argc, char** argv) {
  Flags flags("train");
  declare_train_flags(flags);
  if (!flags.parse(argc, argv, 1)) return 0;
  const RunSummary summary = run_training(flags);
  std::printf("final test accuracy %.2f%% (test loss %.4f) after %.2f epochs, %lld steps, %.1f s\nrun folder: %s\n",
              100 * summary.test_accuracy, summary.test_loss, summary.epochs, (long long)summary.steps,
              summary.wall_seconds, summary.out_dir.c_str());
  return 0;
}

}  // namespace raisin::cli
