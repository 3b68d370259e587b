// How the per-channel kernels (bias, batchnorm) walk NCHW tensors: strided walks that know each
// element's channel without dividing per element (a 64-bit division or modulo per element would cost
// more than the memory access in these bandwidth-bound kernels), in packs of kWidth floats (16-byte
// loads when every plane is 16-byte aligned), a few packs per thread at a time so that their loads are
// in flight together, and the host-side choice of pack width.
// Header only; include it after kernels/cuda/compat.h.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <type_traits>

namespace raisin::cuda {

// Packs a thread takes per step of a walk that reads kTensors tensors: their loads are issued before
// any is used, up to 16 floats (64 bytes) per thread, in at most 4 packs (each pack's index costs two
// registers, and a block of 1024 threads has 64 per thread). With one load in flight per thread, a
// block that owns a whole channel would reach a fraction of the memory bandwidth.
template <int kWidth, int kTensors>
inline constexpr int kPacksPerStep = 16 / (kWidth * kTensors) < 4 ? 16 / (kWidth * kTensors) : 4;

// kWidth consecutive floats of a plane, loaded and stored as one (aligned) access.
template <int kWidth>
struct alignas(4 * kWidth) Pack {
  float v[kWidth];
};

// Pack `index` of `data` (in units of packs); zeros for index −1 (past the end of a walk).
template <int kWidth>
__device__ __forceinline__ Pack<kWidth> load_pack(const float* data, int64_t index) {
  return index >= 0 ? reinterpret_cast<const Pack<kWidth>*>(data)[index] : Pack<kWidth>{};
}
template <int kWidth>
__device__ __forceinline__ void store_pack(float* data, int64_t index, const Pack<kWidth>& pack) {
  reinterpret_cast<Pack<kWidth>*>(data)[index] = pack;
}

// Walks index = first, first + stride, … over a tensor viewed as [planes, spatial] and keeps
//   pos   = index % spatial           (the position inside the plane)
//   plane = (index / spatial) % modulus
// with additions only (the divisions happen once, here).
struct PlaneWalk {
  int64_t index, pos;
  int plane;
  int64_t stride, spatial, pos_step;
  int modulus, plane_step;

  __device__ PlaneWalk(int64_t first, int64_t stride_, int64_t spatial_, int modulus_)
      : index(first),
        pos(first % spatial_),
        plane(int((first / spatial_) % modulus_)),
        stride(stride_),
        spatial(spatial_),
        pos_step(stride_ % spatial_),
        modulus(modulus_),
        plane_step(int((stride_ / spatial_) % modulus_)) {}

  __device__ __forceinline__ void next() {
    index += stride;
    pos += pos_step;
    plane += plane_step;
    if (pos >= spatial) pos -= spatial, ++plane;
    if (plane >= modulus) plane -= modulus;  // plane ≤ 2·modulus − 1 here
  }
};

// Thread `first` of `stride` threads visiting all packs of an NCHW tensor [batch, channels, spatial]
// (spatial counted in packs) in memory order, so coalesced for any spatial size, with each pack's
// channel. take() hands out the thread's next kPacks pack indices, −1 past the end.
struct TensorWalk {
  PlaneWalk walk;  // over [batch·channels, spatial]: plane = channel
  int64_t packs;

  __device__ TensorWalk(int64_t first, int64_t stride, int channels, int64_t spatial, int64_t packs_)
      : walk(first, stride, spatial, channels), packs(packs_) {}
  __device__ __forceinline__ bool done() const { return walk.index >= packs; }

  template <int kPacks>
  __device__ __forceinline__ void take(int64_t (&at)[kPacks], int (&channel)[kPacks]) {
    for (int u = 0; u < kPacks; ++u) {
      at[u] = done() ? -1 : walk.index;
      channel[u] = walk.plane;
      walk.next();
    }
  }
};

// Thread `first` of `stride` threads visiting the batch·spatial packs of one channel c (spatial
// counted in packs): pack j = b·spatial + i lives at (b·channels + c)·spatial + i, so consecutive
// threads read consecutive addresses inside a plane. The walk ends at pack `end` (by default the
// channel's last), so blocks can share a channel, each walking a contiguous range of j from its
// first thread's `first`. take() as above.
struct ChannelWalk {
  PlaneWalk walk;  // over [batch, spatial]: plane = b
  int64_t end;     // one past the last pack j to visit
  int channels, channel;

  __device__ ChannelWalk(int64_t first, int64_t stride, int batch, int channels_, int channel_, int64_t spatial)
      : ChannelWalk(first, stride, batch, channels_, channel_, spatial, int64_t(batch) * spatial) {}
  __device__ ChannelWalk(int64_t first, int64_t stride, int batch, int channels_, int channel_, int64_t spatial,
                         int64_t end_)
      : walk(first, stride, spatial, batch), end(end_), channels(channels_), channel(channel_) {}
  __device__ __forceinline__ bool done() const { return walk.index >= end; }

  template <int kPacks>
  __device__ __forceinline__ void take(int64_t (&at)[kPacks]) {
    for (int u = 0; u < kPacks; ++u) {
      at[u] = done() ? -1 : (int64_t(walk.plane) * channels + channel) * walk.spatial + walk.pos;
      walk.next();
    }
  }
};

// ---- host side ----

// 4 (16-byte packs) when every plane of `spatial` floats starts 16-byte aligned in every given tensor
// (null pointers, absent tensors, do not count); else 1.
inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

inline int pack_width(int64_t spatial, std::initializer_list<const void*> tensors) {
  if (spatial % 4 != 0) return 1;
  for (const void* p : tensors)
    if (!aligned16(p)) return 1;
  return 4;
}

template <int kValue>
using Constant = std::integral_constant<int, kValue>;

// Calls launch(Constant<width>{}) for a pack width from pack_width().
template <typename Launch>
void with_pack_width(int width, Launch&& launch) {
  if (width == 4)
    launch(Constant<4>{});
  else
    launch(Constant<1>{});
}

}  // namespace raisin::cuda
