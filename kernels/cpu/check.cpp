// CPU find_nonfinite: the first NaN or infinity of a list of buffers, in buffer order then element order
// (signatures.inc). Large buffers are scanned in parallel blocks; the smallest faulty index wins, so the
// answer does not depend on the thread count.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 16;

// The index of the first non-finite value of data[0, n), or n.
int64_t first_nonfinite(const float* data, int64_t n) {
  int64_t first = n;
#pragma omp parallel for reduction(min : first) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(data[i]) && i < first) first = i;
  return first;
}
}  // namespace

void find_nonfinite(const kernels::CheckTensor* tensors, int count, const int64_t* row, double* rows, int32_t* skip) {
  double* out = rows + row[0] * kernels::kStepMetricCount;
  out[kernels::kMetricFaultBuffer] = -1;
  out[kernels::kMetricFaultValue] = 0;
  skip[0] = 0;
  for (int k = 0; k < count; ++k) {
    const int64_t at = first_nonfinite(tensors[k].data, tensors[k].n);
    if (at == tensors[k].n) continue;
    out[kernels::kMetricFaultBuffer] = k;
    out[kernels::kMetricFaultValue] = tensors[k].data[at];
    skip[0] = 1;
    return;
  }
}

}  // namespace raisin::cpu
