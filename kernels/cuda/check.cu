// CUDA find_nonfinite, the twin of kernels/cpu/check.cpp. Launch tables (kernel arguments, capturable in
// a CUDA graph) give each block a chunk of one buffer; a thread that meets a NaN or infinity offers
// (buffer << 40 | element) to one 64-bit atomicMin, so the smallest key, the first non-finite value in
// buffer-then-element order, wins whatever order the blocks run in. A one-thread kernel per table then
// reads that value and writes the metrics row and the skip flag.
#include "kernels/cuda/compat.h"  // first: the .cuh headers below need its CUDA keywords

#include <cstdint>
#include <vector>

#include "kernels/cuda/channel_chunks.cuh"
#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"

namespace raisin::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBuffers = 48;   // per launch table
constexpr int kMaxBlocks = 256;   // per launch table
constexpr int64_t kChunk = 4096;  // elements per block
constexpr int kElementBits = 40;
constexpr unsigned long long kNoFault = ~0ull;

struct CheckTable {
  const float* data[kMaxBuffers];
  int64_t n[kMaxBuffers];
  int32_t buffer[kMaxBuffers];  // the buffer's index in the caller's list
  uint8_t block_slot[kMaxBlocks];
  int32_t block_chunk[kMaxBlocks];
  int slots;
};
static_assert(sizeof(CheckTable) + 64 <= 4096, "kernel arguments are limited to 4 KiB");

__global__ void scan_kernel(CheckTable table, unsigned long long* key) {
  const int s = table.block_slot[blockIdx.x];
  const int64_t begin = int64_t(table.block_chunk[blockIdx.x]) * kChunk;
  const int64_t end = begin + kChunk < table.n[s] ? begin + kChunk : table.n[s];
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    if (!isfinite(table.data[s][i])) {
      atomicMin(key, (static_cast<unsigned long long>(table.buffer[s]) << kElementBits) |
                         static_cast<unsigned long long>(i));
      return;  // this thread's later elements come after i
    }
  }
}

__global__ void finish_kernel(CheckTable table, bool first_table, const unsigned long long* key, const int64_t* row,
                              double* rows, int32_t* skip) {
  double* out = rows + row[0] * kernels::kStepMetricCount;
  const unsigned long long k = *key;
  if (k == kNoFault) {
    if (first_table) {
      out[kernels::kMetricFaultBuffer] = -1;
      out[kernels::kMetricFaultValue] = 0;
      *skip = 0;
    }
    return;
  }
  const int buffer = int(k >> kElementBits);
  const int64_t element = int64_t(k & ((1ull << kElementBits) - 1));
  for (int s = 0; s < table.slots; ++s) {
    if (table.buffer[s] != buffer) continue;
    out[kernels::kMetricFaultBuffer] = buffer;
    out[kernels::kMetricFaultValue] = table.data[s][element];
    *skip = 1;
    return;
  }
}

}  // namespace

void find_nonfinite(const kernels::CheckTensor* tensors, int count, const int64_t* row, double* rows, int32_t* skip) {
  const cudaStream_t stream = current_stream();
  Scratch<unsigned long long> key(1);
  RAISIN_CUDA_CHECK(cudaMemsetAsync(key.get(), 0xff, sizeof(unsigned long long), stream));
  // Fill tables buffer by buffer, chunk by chunk; scan each as it fills; keep them for the finish.
  std::vector<CheckTable> tables(1);
  int blocks = 0;
  auto scan = [&] {
    if (blocks > 0) {
      RAISIN_LAUNCH(scan_kernel, blocks, kThreads, 0, stream)(tables.back(), key.get());
      RAISIN_CUDA_CHECK(cudaGetLastError());
    }
    tables.emplace_back();
    blocks = 0;
  };
  auto put = [&](int k) {
    CheckTable& t = tables.back();
    t.data[t.slots] = tensors[k].data;
    t.n[t.slots] = tensors[k].n;
    t.buffer[t.slots] = k;
    return t.slots++;
  };
  for (int k = 0; k < count; ++k) {
    if (tensors[k].n <= 0) continue;
    if (tables.back().slots == kMaxBuffers) scan();
    int slot = put(k);
    const int64_t chunks = (tensors[k].n + kChunk - 1) / kChunk;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      if (blocks == kMaxBlocks) {
        scan();
        slot = put(k);  // the rest of this buffer goes into the next table
      }
      tables.back().block_slot[blocks] = uint8_t(slot);
      tables.back().block_chunk[blocks] = int32_t(chunk);
      ++blocks;
    }
  }
  scan();  // the last table (and an empty one after it, which the finish ignores)
  for (size_t i = 0; i + 1 < tables.size() || i == 0; ++i) {
    RAISIN_LAUNCH(finish_kernel, 1, 1, 0, stream)(tables[i], i == 0, key.get(), row, rows, skip);
    RAISIN_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace raisin::cuda
