// Test helpers for kernel shape structs: a readable name for failure messages and NCHW indexing, shared
// by the CPU kernel tests and the CUDA parity tests.
#pragma once
#include <cstdint>
#include <sstream>
#include <string>

#include "kernels/shapes.h"

namespace raisin::test {

inline std::string name(const kernels::ImageShape& s) {
  std::ostringstream out;
  out << "[" << s.batch << "," << s.channels << "," << s.height << "," << s.width << "]";
  return out.str();
}

inline std::string name(const kernels::LossShape& s) {
  std::ostringstream out;
  out << "[" << s.batch << "," << s.classes << "]";
  return out.str();
}

// Flat index of element i of plane (b, c) in an NCHW tensor of shape s.
inline int64_t at(const kernels::ImageShape& s, int b, int c, int64_t i) {
  return (int64_t(b) * s.channels + c) * s.spatial() + i;
}

}  // namespace raisin::test
