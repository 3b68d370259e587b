// Tensor and Shape: metadata, allocation and checked data access.
#include "engine/tensor.h"

#include <algorithm>
#include <cstring>

#include "engine/backend.h"
#include "engine/memory.h"

namespace raisin {

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

const char* dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "f32";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::f64: return "f64";
  }
  return "?";
}

Shape::Shape(std::initializer_list<int64_t> sizes) {
  for (int64_t s : sizes) push_back(s);
}

void Shape::push_back(int64_t size) {
  if (ndim_ == kMaxDims) throw error("shape: more than ", kMaxDims, " dimensions");
  sizes_[ndim_++] = size;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int d = 0; d < ndim_; ++d) n *= sizes_[d];
  return n;
}

bool Shape::operator==(const Shape& other) const {
  return ndim_ == other.ndim_ && std::equal(sizes_, sizes_ + ndim_, other.sizes_);
}

std::string Shape::str() const {
  std::string s = "[";
  for (int d = 0; d < ndim_; ++d) s += (d ? ", " : "") + std::to_string(sizes_[d]);
  return s + "]";
}

Storage::~Storage() {
  if (release) release(data, bytes);
}

static void check_sizes(const Shape& shape) {
  for (int d = 0; d < shape.ndim(); ++d)
    if (shape[d] < 0) throw error("tensor: negative size in shape ", shape.str());
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_sizes(shape);
  const Backend& b = backend(device);
  auto storage = std::make_shared<Storage>();
  storage->bytes = size_t(shape.numel()) * dtype_size(dtype);
  storage->data = b.allocate(storage->bytes);
  storage->device = device;
  storage->release = b.release;
  Tensor t;
  t.storage_ = std::move(storage);
  t.shape_ = shape;
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend(device).zero(t.raw(), size_t(t.numel()) * dtype_size(dtype));
  return t;
}

Tensor Tensor::empty(Arena& arena, const Shape& shape, DType dtype) {
  check_sizes(shape);
  auto storage = std::make_shared<Storage>();
  storage->bytes = size_t(shape.numel()) * dtype_size(dtype);
  storage->data = arena.allocate(storage->bytes);
  storage->device = arena.device();
  storage->arena = &arena;
  storage->arena_generation = arena.generation();
  Tensor t;
  t.storage_ = std::move(storage);
  t.shape_ = shape;
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, Device device) {
  check_sizes(shape);
  auto storage = std::make_shared<Storage>();
  storage->data = data;
  storage->bytes = size_t(shape.numel()) * dtype_size(dtype);
  storage->device = device;
  Tensor t;
  t.storage_ = std::move(storage);
  t.shape_ = shape;
  t.dtype_ = dtype;
  return t;
}

std::string Tensor::str() const {
  if (!defined()) return "(undefined tensor)";
  return shape_.str() + " " + dtype_name(dtype_) + " " + device().str();
}

void* Tensor::raw() const {
  if (!storage_) throw error("tensor: access to an undefined tensor");
  if (storage_->arena && storage_->arena->generation() != storage_->arena_generation)
    throw error("tensor ", shape_.str(), ": used after its arena was reset (an activation kept past its step)");
  return storage_->data;
}

float* Tensor::f32() const {
  if (dtype_ != DType::f32) throw error("tensor ", str(), ": accessed as f32");
  return static_cast<float*>(raw());
}

int32_t* Tensor::i32() const {
  if (dtype_ != DType::i32) throw error("tensor ", str(), ": accessed as i32");
  return static_cast<int32_t*>(raw());
}

int64_t* Tensor::i64() const {
  if (dtype_ != DType::i64) throw error("tensor ", str(), ": accessed as i64");
  return static_cast<int64_t*>(raw());
}

double* Tensor::f64() const {
  if (dtype_ != DType::f64) throw error("tensor ", str(), ": accessed as f64");
  return static_cast<double*>(raw());
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape resolved = shape;
  int inferred = -1;
  int64_t known = 1;
  for (int d = 0; d < shape.ndim(); ++d) {
    if (shape[d] == -1) {
      if (inferred >= 0) throw error("reshape ", shape_.str(), " to ", shape.str(), ": more than one -1");
      inferred = d;
    } else {
      known *= shape[d];
    }
  }
  if (inferred >= 0 && known > 0 && numel() % known == 0) resolved[inferred] = numel() / known;
  if (resolved.numel() != numel() || (inferred >= 0 && known == 0))
    throw error("reshape: cannot view ", shape_.str(), " (", numel(), " elements) as ", shape.str());
  Tensor t = *this;
  t.shape_ = resolved;
  return t;
}

Tensor Tensor::flatten(int start_dim) const {
  if (start_dim < 0 || start_dim >= std::max(ndim(), 1))
    throw error("flatten: start_dim ", start_dim, " out of range for ", shape_.str());
  Shape flat;
  int64_t rest = 1;
  for (int d = 0; d < ndim(); ++d) {
    if (d < start_dim) flat.push_back(shape_[d]);
    else rest *= shape_[d];
  }
  flat.push_back(rest);
  return reshape(flat);
}

void Tensor::copy_from(const Tensor& other) {
  if (!(other.shape() == shape_) || other.dtype() != dtype_)
    throw error("copy: destination ", str(), " does not match source ", other.str());
  const size_t bytes = size_t(numel()) * dtype_size(dtype_);
  const Device to = device(), from = other.device();
  if (to.is_cpu() && from.is_cpu()) std::memcpy(raw(), other.raw(), bytes);
  else if (from.is_cpu()) backend(to).copy_to_device(raw(), other.raw(), bytes);
  else if (to.is_cpu()) backend(from).copy_to_host(raw(), other.raw(), bytes);
  else if (to == from) backend(to).copy_on_device(raw(), other.raw(), bytes);
  else throw error("copy: ", other.str(), " to ", str(), ": copies between two GPUs are not supported");
}

void Tensor::fill(float value) {
  if (!device().is_cpu()) {
    const Backend& b = backend(device());
    if (dtype_ == DType::f32) b.fill(numel(), value, f32());
    else if (value == 0.0f) b.zero(raw(), size_t(numel()) * dtype_size(dtype_));
    else throw error("fill: ", str(), ": only f32 tensors (or zeros) can be filled on ", device().str());
    return;
  }
  switch (dtype_) {
    case DType::f32: backend(Device::cpu()).fill(numel(), value, f32()); break;  // parallel for large tensors
    case DType::i32: std::fill_n(i32(), numel(), int32_t(value)); break;
    case DType::i64: std::fill_n(i64(), numel(), int64_t(value)); break;
    case DType::f64: std::fill_n(f64(), numel(), double(value)); break;
  }
}

Tensor Tensor::to(Device device) const {
  if (this->device() == device) return *this;
  Tensor copy = empty(shape_, dtype_, device);
  copy.copy_from(*this);
  return copy;
}

void Tensor::relocate(Device device) {
  if (!storage_ || storage_->device == device) return;
  if (storage_->arena || !storage_->release)
    throw error("relocate: ", str(), " lives in an arena or in memory the caller owns; copy it with to()");
  Tensor moved = to(device);
  std::swap(storage_->data, moved.storage_->data);
  std::swap(storage_->device, moved.storage_->device);
  std::swap(storage_->release, moved.storage_->release);  // `moved` now frees the old block
}

}  // namespace raisin
