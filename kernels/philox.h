// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"): a counter-based
// generator, usable from CPU and CUDA code alike, so both backends draw the same numbers for the same
// (key, counter).
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define RAISIN_HOST_DEVICE __host__ __device__
#else
#define RAISIN_HOST_DEVICE
#endif

namespace raisin::kernels {

struct Philox4 {
  uint32_t v[4];
};

RAISIN_HOST_DEVICE inline void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = uint64_t(a) * uint64_t(b);
  hi = uint32_t(product >> 32);
  lo = uint32_t(product);
}

// Ten rounds of Philox4x32 on counter (c0..c3) with key (k0, k1).
RAISIN_HOST_DEVICE inline Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                             uint32_t k1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kMul0, c0, hi0, lo0);
    philox_mulhilo(kMul1, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Four 32-bit words for counter (index, stream) under a 64-bit seed.
RAISIN_HOST_DEVICE inline Philox4 philox_block(uint64_t seed, uint64_t stream, uint64_t index) {
  return philox4x32(uint32_t(index), uint32_t(index >> 32), uint32_t(stream), uint32_t(stream >> 32),
                    uint32_t(seed), uint32_t(seed >> 32));
}

// A float uniform in [0, 1) from the top 24 bits of a word.
RAISIN_HOST_DEVICE inline float philox_uniform(uint32_t word) { return float(word >> 8) * (1.0f / 16777216.0f); }

// The uniform number number `i` of stream `stream`: word i % 4 of block i / 4.
RAISIN_HOST_DEVICE inline float philox_uniform_at(uint64_t seed, uint64_t stream, uint64_t i) {
  return philox_uniform(philox_block(seed, stream, i / 4).v[i % 4]);
}

}  // namespace raisin::kernels
