// Fuzz target: IDX images and labels (plain or gzip) through raisin::parse_idx. The input is
//   byte 0: classes - 1;  bytes 1..4: n, the images file's length (u32 little-endian, clamped to what
//   is there);  then n bytes of the images file and the rest as the labels file.
// Bad data must end in raisin::Error; anything else (a crash, another exception) is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "engine/dataset.h"
#include "engine/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const int classes = int(data[0]) + 1;
  const size_t images_size =
      std::min<size_t>(size - 5, uint32_t(data[1]) | uint32_t(data[2]) << 8 | uint32_t(data[3]) << 16 |
                                     uint32_t(data[4]) << 24);
  const std::span<const uint8_t> images(data + 5, images_size), labels(data + 5 + images_size, size - 5 - images_size);
  try {
    const raisin::Dataset d = raisin::parse_idx(images, labels, classes);
    if (d.images.size() != size_t(d.count) * size_t(d.image_size()) || d.labels.size() != size_t(d.count)) __builtin_trap();
  } catch (const raisin::Error&) {
  }
  return 0;
}
