// CUDA batch assembly, the twin of kernels/cpu/gather.cpp: gathers images of a uint8 dataset held on the
// device by index, applies the seeded pad-and-crop and horizontal flip (slot b draws from
// philox_block(seed, step[0], b), as signatures.inc documents) and normalises each channel:
// x = (pixel / 255 − mean[c]) · inv_std[c], the CPU's float operations (its lookup table holds exactly
// these values, and the zero padding reads the value of pixel 0), so both backends agree bit for bit.
//
// Launch shape: grid (blocks per image, slots); every thread draws its slot's augmentation once and then
// strides through the image, so consecutive threads write consecutive floats and read consecutive bytes.
// Each thread handles about kElementsPerThread elements, which amortises the ten Philox rounds.
#include <cstdint>

#include "kernels/cuda/compat.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"
#include "kernels/philox.h"

namespace raisin::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kElementsPerThread = 8;
constexpr int kMaxGridY = 65535;

__global__ void gather_batch_kernel(kernels::GatherShape s, const uint8_t* images, const int32_t* labels,
                                    const int32_t* indices, const float* mean, const float* inv_std, uint64_t seed,
                                    const int64_t* step, float* x, int32_t* y) {
  const int C = s.channels, H = s.height, W = s.width, pad = s.pad;
  const uint64_t stream = pad > 0 || s.flip ? uint64_t(step[0]) : 0;
  const int64_t plane = int64_t(H) * W, image = C * plane;
  for (int b = blockIdx.y; b < s.batch; b += gridDim.y) {
    const int64_t i = indices[b];
    if (blockIdx.x == 0 && threadIdx.x == 0) y[b] = labels[i];
    int dy = 0, dx = 0;
    bool flip = false;
    if (pad > 0 || s.flip) {
      const kernels::Philox4 r = kernels::philox_block(seed, stream, uint64_t(b));
      const uint32_t span = uint32_t(2 * pad + 1);
      dy = int(r.v[0] % span), dx = int(r.v[1] % span);
      flip = s.flip && (r.v[2] & 1u);
    }
    const uint8_t* src = images + i * image;
    float* dst = x + int64_t(b) * image;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < image; e += int64_t(gridDim.x) * blockDim.x) {
      const int c = int(e / plane);
      const int at = int(e - c * plane);
      const int h = at / W, w = at - h * W;
      const int sh = h + dy - pad, sw = (flip ? W - 1 - w : w) + dx - pad;
      const bool inside = sh >= 0 && sh < H && sw >= 0 && sw < W;
      const float pixel = inside ? float(src[c * plane + sh * W + sw]) : 0.0f;
      dst[e] = (pixel / 255.0f - mean[c]) * inv_std[c];
    }
  }
}

}  // namespace

void gather_batch(const kernels::GatherShape& s, const uint8_t* images, const int32_t* labels,
                  const int32_t* indices, const float* mean, const float* inv_std, uint64_t seed,
                  const int64_t* step, float* x, int32_t* y) {
  if (s.batch <= 0) return;
  const int64_t image = int64_t(s.channels) * s.height * s.width;
  const int64_t per_block = int64_t(kThreads) * kElementsPerThread;
  const int64_t blocks_x = (image + per_block - 1) / per_block;
  const dim3 grid(unsigned(blocks_x > 0 ? blocks_x : 1), unsigned(s.batch < kMaxGridY ? s.batch : kMaxGridY));
  RAISIN_LAUNCH(gather_batch_kernel, grid, kThreads, 0, current_stream())(s, images, labels, indices, mean, inv_std,
                                                                          seed, step, x, y);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace raisin::cuda
