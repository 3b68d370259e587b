// The subcommands of `raisin`; each returns the process exit status.
#pragma once

namespace raisin::cli {

int train_command(int argc, char** argv);  // argv[0] is "train"
int eval_command(int argc, char** argv);   // argv[0] is "eval"
int compare_command(int argc, char** argv);  // argv[0] is "compare"

}  // namespace raisin::cli
