// A dataset where the gather kernel can read it: its uint8 images and int32 labels on the training
// device (uploaded once; on the cpu, the dataset's own memory), with the per-channel normalisation
// constants, so that each step assembles its batch on the device from the sampled indices alone.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/dataset.h"
#include "engine/memory.h"
#include "engine/tensor.h"

namespace raisin {

class DeviceData {
 public:
  // Throws when the normalisation does not match the images' channels (at most 16 channels).
  DeviceData(const Dataset& data, const Normalization& normalization, Device device);
  ~DeviceData();
  DeviceData(const DeviceData&) = delete;
  DeviceData& operator=(const DeviceData&) = delete;

  // x [B, C, H, W] (normalised; randomly cropped after zero padding by `crop_padding` and flipped when
  // asked, with draws keyed by (seed, step[0]); `step` is an int64 on this data's device, not read and
  // may be null without augmentation) and y [B] for examples `indices`, in `arena` (which must be on this
  // data's device).
  void gather(Arena& arena, const std::vector<int32_t>& indices, int crop_padding, bool flip, uint64_t seed,
              const int64_t* step, Tensor& x, Tensor& y) const;
  // The same for indices already on this data's device (int32 [batch]).
  void gather(Arena& arena, const Tensor& indices, int crop_padding, bool flip, uint64_t seed, const int64_t* step,
              Tensor& x, Tensor& y) const;

  const Dataset& data() const { return data_; }
  Device device() const { return device_; }

 private:
  const Dataset& data_;
  Device device_;
  uint8_t* images_ = nullptr;  // the dataset's images on device_ (its own vector on the cpu)
  Tensor labels_, mean_, inv_std_;
};

}  // namespace raisin
