// Fuzz target: one CIFAR-10 binary batch through raisin::parse_cifar_binary; the input is the file.
// Bad data must end in raisin::Error; anything else (a crash, another exception) is a finding.
#include <cstddef>
#include <cstdint>
#include <span>

#include "engine/dataset.h"
#include "engine/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const raisin::Dataset d = raisin::parse_cifar_binary(std::span<const uint8_t>(data, size));
    if (d.images.size() != size_t(d.count) * 3072 || d.labels.size() != size_t(d.count)) __builtin_trap();
  } catch (const raisin::Error&) {
  }
  return 0;
}
