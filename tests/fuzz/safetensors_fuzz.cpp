// Fuzz target: a safetensors file through raisin::safetensors::parse; the input is the file. Bad data
// must end in raisin::Error; anything else (a crash, another exception) is a finding, and so is a
// parsed entry whose bytes do not match its dtype and shape.
#include <cstddef>
#include <cstdint>
#include <span>

#include "engine/error.h"
#include "engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const raisin::safetensors::File file = raisin::safetensors::parse(std::span<const uint8_t>(data, size), "input");
    for (const raisin::safetensors::Entry& e : file.entries)
      if (e.data.size() != size_t(e.numel()) * raisin::safetensors::element_size(e.dtype)) __builtin_trap();
  } catch (const raisin::Error&) {
  }
  return 0;
}
