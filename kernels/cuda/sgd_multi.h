// The launch limits of the CUDA multi-tensor SGD (sgd_update_multi in kernels/signatures.inc): its
// launch table travels as a kernel argument (no device copy of the list, nothing to synchronise,
// capturable in a CUDA graph). One launch covers up to kSgdMultiMaxTensors tensors and kSgdMultiMaxBlocks
// blocks of kSgdMultiChunk elements each; longer lists take several launches. Tests size their cases by them.
#pragma once
#include <cstdint>

namespace raisin::cuda {

constexpr int kSgdMultiMaxTensors = 48;
constexpr int kSgdMultiMaxBlocks = 256;
constexpr int64_t kSgdMultiChunk = 4096;

}  // namespace raisin::cuda
