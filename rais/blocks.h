// Deterministic parallel loops for the RAIS sampler's passes over examples and records: the work is
// cut into blocks of a fixed size, the blocks are spread over OpenMP threads, and whatever a block
// sums is combined afterwards in block order. Results are therefore the same bit for bit for any
// number of threads (a run resumed with another --threads continues exactly). Inputs of fewer than
// two blocks run on the calling thread. Bodies must not throw (they run inside OpenMP regions).
#pragma once
#include <algorithm>
#include <cstdint>

namespace raisin::rais {

inline int64_t block_count(int64_t n, int64_t block) { return (n + block - 1) / block; }

// Calls body(begin, end, b) for every block b = [begin, end) of [0, n). A single block runs without
// entering OpenMP at all (the sampler calls this per drawn example, too).
template <typename Body>
void for_blocks(int64_t n, int64_t block, const Body& body) {
  const int64_t blocks = block_count(n, block);
  if (blocks < 2) {
    if (n > 0) body(0, n, 0);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) body(b * block, std::min(n, (b + 1) * block), b);
}

}  // namespace raisin::rais
