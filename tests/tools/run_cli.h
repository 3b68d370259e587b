// Drives the raisin command line in-process for the CLI tests: run({"train", "--epochs", "1"}).
#pragma once
#include <string>
#include <vector>

#include "tools/cli/cli.h"

namespace raisin::test {

inline int run(std::vector<std::string> args) {
  args.insert(args.begin(), "raisin");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return cli::main(int(argv.size()), argv.data());
}

}  // namespace raisin::test
