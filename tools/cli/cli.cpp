// Dispatch of `raisin <command>`.
#include "tools/cli/cli.h"

#include <cstdio>
#include <string>

#include "engine/error.h"
#include "tools/cli/commands.h"
#include "tools/cli/interrupt.h"

namespace raisin::cli {

namespace {
constexpr const char* kUsage =
    "usage: raisin <command> [flags]\n"
    "\n"
    "commands:\n"
    "  train   train a model (raisin train --help)\n"
    "  eval    evaluate a checkpoint on a test set (raisin eval --help)\n"
    "  compare train with several samplers and report which reaches uniform's results sooner\n"
    "          (raisin compare --help)\n";
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  try {
    if (command == "train") return train_command(argc - 1, argv + 1);
    if (command == "eval") return eval_command(argc - 1, argv + 1);
    if (command == "compare") return compare_command(argc - 1, argv + 1);
  } catch (const Interrupted& e) {
    return 128 + e.signal();  // the run has said where it stopped and how to continue
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raisin %s: unexpected error: %s\n", command.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr, "raisin: unknown command '%s'\n%s", argv[1], kUsage);
  return 2;
}

}  // namespace raisin::cli
