// The CPU backend's kernels: the reference implementation of every op (signatures in ../signatures.inc).
#pragma once
#include <cstdint>

#include "kernels/schedule.h"
#include "kernels/shapes.h"

namespace raisin::cpu {
#include "kernels/signatures.inc"
}  // namespace raisin::cpu
