// Drives the raisin command line in-process for the CLI tests: run({"train", "--epochs", "1"}); and
// ScratchDir, an empty folder for a test's runs.
#pragma once
#include <unistd.h>

#include <filesystem>
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

// An empty temporary folder for a test's runs, named after the test and this process (test binaries of
// several builds may run at once), removed when it goes out of scope.
struct ScratchDir {
  explicit ScratchDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("raisin_cli_test_" + std::to_string(::getpid()) + "_" + name)) {
    std::filesystem::remove_all(path);
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path path;
};

}  // namespace raisin::test
