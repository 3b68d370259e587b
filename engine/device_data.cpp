// Uploading a dataset to the training device and gathering batches there.
#include "engine/device_data.h"

#include <algorithm>

#include "engine/backend.h"

namespace raisin {

namespace {

Tensor host_tensor(const std::vector<float>& values) {
  Tensor t = Tensor::empty({int64_t(values.size())});
  std::copy(values.begin(), values.end(), t.f32());
  return t;
}

}  // namespace

DeviceData::DeviceData(const Dataset& data, const Normalization& normalization, Device device)
    : data_(data), device_(device) {
  if (data.channels > 16) throw error("data ", data.name, ": ", data.channels, " channels; at most 16 are supported");
  if (int(normalization.mean.size()) != data.channels || int(normalization.stddev.size()) != data.channels)
    throw error("data ", data.name, ": normalisation has ", normalization.mean.size(), " channels, the images ",
                data.channels);
  std::vector<float> inv_std(size_t(data.channels));
  for (int c = 0; c < data.channels; ++c)
    inv_std[size_t(c)] = normalization.stddev[size_t(c)] > 0 ? 1.0f / normalization.stddev[size_t(c)] : 1.0f;
  mean_ = host_tensor(normalization.mean).to(device);
  inv_std_ = host_tensor(inv_std).to(device);
  Tensor labels = Tensor::wrap(const_cast<int32_t*>(data.labels.data()), {data.count}, DType::i32, Device::cpu());
  labels_ = labels.to(device);
  if (device.is_cpu()) {
    images_ = const_cast<uint8_t*>(data.images.data());
  } else {
    const Backend& b = backend(device);
    images_ = static_cast<uint8_t*>(b.allocate(data.images.size()));
    b.copy_to_device(images_, data.images.data(), data.images.size());
  }
}

DeviceData::~DeviceData() {
  if (!device_.is_cpu()) backend(device_).release(images_, data_.images.size());
}

void DeviceData::gather(Arena& arena, const std::vector<int32_t>& indices, int crop_padding, bool flip, uint64_t seed,
                        const int64_t* step, Tensor& x, Tensor& y) const {
  Tensor on_device = Tensor::empty(arena, {int64_t(indices.size())}, DType::i32);
  backend(device_).copy_to_device(on_device.i32(), indices.data(), indices.size() * sizeof(int32_t));
  gather(arena, on_device, crop_padding, flip, seed, step, x, y);
}

void DeviceData::gather(Arena& arena, const Tensor& indices, int crop_padding, bool flip, uint64_t seed,
                        const int64_t* step, Tensor& x, Tensor& y) const {
  if (!(arena.device() == device_))
    throw error("gather: the data is on ", device_.str(), " but the arena on ", arena.device().str());
  if (!(indices.device() == device_) || indices.dtype() != DType::i32 || indices.ndim() != 1)
    throw error("gather: indices ", indices.str(), " must be int32 [batch] on ", device_.str());
  const int batch = int(indices.numel());
  x = Tensor::empty(arena, {batch, data_.channels, data_.height, data_.width});
  y = Tensor::empty(arena, {batch}, DType::i32);
  if ((crop_padding > 0 || flip) && !step) throw error("gather: augmentation needs the step in device memory");
  const kernels::GatherShape s{batch, data_.channels, data_.height, data_.width, crop_padding, flip};
  backend(device_).gather_batch(s, images_, labels_.i32(), indices.i32(), mean_.f32(), inv_std_.f32(), seed, step,
                                x.f32(), y.i32());
}

}  // namespace raisin
