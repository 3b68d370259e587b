// CPU batch assembly: gathers examples by index, applies the seeded pad-and-crop and horizontal flip
// (draws from philox_block(seed, step[0], b) for slot b, as signatures.inc documents) and normalises each
// channel. A 256-entry table per channel holds (p / 255 − mean[c]) · inv_std[c] for every byte p, computed
// with exactly the float operations of the formula, so the result is the formula's to the last bit; the
// zero padding reads entry 0.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/philox.h"

namespace raisin::cpu {

namespace {
// Below this many output values a single thread is faster than a parallel region.
constexpr int64_t kParallelMin = 1 << 15;
}  // namespace

void gather_batch(const kernels::GatherShape& s, const uint8_t* images, const int32_t* labels,
                  const int32_t* indices, const float* mean, const float* inv_std, uint64_t seed,
                  const int64_t* step, float* x, int32_t* y) {
  const int C = s.channels, H = s.height, W = s.width, pad = s.pad;
  const int64_t plane = int64_t(H) * W, image = C * plane;
  std::vector<float> table(size_t(C) * 256);
  for (int c = 0; c < C; ++c)
    for (int p = 0; p < 256; ++p) table[size_t(c) * 256 + p] = (float(p) / 255.0f - mean[c]) * inv_std[c];
  const uint32_t span = uint32_t(2 * pad + 1);
  const uint64_t stream = pad > 0 || s.flip ? uint64_t(step[0]) : 0;

#pragma omp parallel for schedule(static) if (int64_t(s.batch) * image >= kParallelMin)
  for (int b = 0; b < s.batch; ++b) {
    const int64_t i = indices[b];
    y[b] = labels[i];
    int dy = 0, dx = 0;
    bool flip = false;
    if (pad > 0 || s.flip) {
      const kernels::Philox4 r = kernels::philox_block(seed, stream, uint64_t(b));
      dy = int(r.v[0] % span), dx = int(r.v[1] % span);
      flip = s.flip && (r.v[2] & 1u);
    }
    const uint8_t* src = images + i * image;
    float* dst = x + int64_t(b) * image;
    for (int c = 0; c < C; ++c) {
      const float* lut = table.data() + size_t(c) * 256;
      const uint8_t* src_plane = src + c * plane;
      float* dst_plane = dst + c * plane;
      for (int h = 0; h < H; ++h) {
        float* out = dst_plane + int64_t(h) * W;
        const int sh = h + dy - pad;
        if (sh < 0 || sh >= H) {
          for (int w = 0; w < W; ++w) out[w] = lut[0];
          continue;
        }
        const uint8_t* row = src_plane + int64_t(sh) * W;
        // Output column w reads source column w' + dx − pad with w' = w, or W − 1 − w when flipped.
        if (!flip) {
          const int shift = dx - pad;
          for (int w = 0; w < W; ++w) {
            const int sw = w + shift;
            out[w] = (sw >= 0 && sw < W) ? lut[row[sw]] : lut[0];
          }
        } else {
          const int base = W - 1 + dx - pad;
          for (int w = 0; w < W; ++w) {
            const int sw = base - w;
            out[w] = (sw >= 0 && sw < W) ? lut[row[sw]] : lut[0];
          }
        }
      }
    }
  }
}

}  // namespace raisin::cpu
