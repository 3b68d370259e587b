// Fuzz target: the flags of `raisin train` (tools/cli/run.cpp declares them) through
// raisin::cli::Flags::parse, then every flag read back as a string, a switch, a whole number and a real
// number. The input is the argument list, arguments separated by NUL bytes. Bad flags must end in
// raisin::Error; anything else (a crash, another exception) is a finding.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "engine/error.h"
#include "tools/cli/flags.h"
#include "tools/cli/run.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args = {"train"};
  std::string current;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) args.push_back(std::move(current)), current.clear();
    else current += char(data[i]);
  }
  if (size > 0) args.push_back(std::move(current));
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  raisin::cli::Flags flags("train");
  raisin::cli::declare_train_flags(flags);
  try {
    if (!flags.parse(int(args.size()), argv.data(), 1)) return 0;  // --help
  } catch (const raisin::Error&) {
    return 0;
  }
  for (const auto& [name, value] : flags.values()) {
    if (flags.str(name) != value) __builtin_trap();
    flags.on(name);
    flags.given(name);
    try {
      flags.integer(name, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
    } catch (const raisin::Error&) {
    }
    try {
      flags.integer(name, 0, 1 << 20);
    } catch (const raisin::Error&) {
    }
    try {
      flags.real(name, -1e300, 1e300);
    } catch (const raisin::Error&) {
    }
  }
  return 0;
}
