// Tensor: float32 (int32 for labels and indices, int64 for counters, float64 for samplers' state) NCHW data, contiguous, on a device, over shared storage. No general
// striding: reshape and flatten only change metadata. Storage comes from the caching allocator
// (persistent tensors) or from an Arena (per-step activations; see memory.h).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "engine/error.h"

namespace raisin {

struct Device {
  enum class Kind { cpu, cuda };
  Kind kind = Kind::cpu;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {Kind::cuda, index}; }
  bool is_cpu() const { return kind == Kind::cpu; }
  bool operator==(const Device&) const = default;
  std::string str() const;  // "cpu", "cuda:0"
};

enum class DType { f32, i32, i64, f64 };
const char* dtype_name(DType d);
constexpr size_t dtype_size(DType d) { return d == DType::i64 || d == DType::f64 ? 8 : 4; }

// Up to kMaxDims sizes; ndim 0 is a scalar with one element.
class Shape {
 public:
  static constexpr int kMaxDims = 6;
  Shape() = default;
  Shape(std::initializer_list<int64_t> sizes);

  int ndim() const { return ndim_; }
  int64_t operator[](int d) const { return sizes_[d]; }
  int64_t& operator[](int d) { return sizes_[d]; }
  int64_t numel() const;
  void push_back(int64_t size);
  bool operator==(const Shape& other) const;
  std::string str() const;  // "[128, 1, 28, 28]"

 private:
  int64_t sizes_[kMaxDims] = {};
  int ndim_ = 0;
};

class Arena;

// A block of memory. `release` returns it to where it came from; arena blocks instead carry the
// arena's generation so that using one after Arena::reset() is caught.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  const Arena* arena = nullptr;
  uint64_t arena_generation = 0;
  void (*release)(void* data, size_t bytes) = nullptr;
  ~Storage();
};

class Tensor {
 public:
  Tensor() = default;

  // A new tensor from the caching allocator (uninitialised / zero-filled).
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  // A new tensor whose memory lives until the arena's next reset.
  static Tensor empty(Arena& arena, const Shape& shape, DType dtype = DType::f32);
  // A view of memory the caller owns and keeps alive.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, Device device);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim(); }
  int64_t size(int d) const { return shape_[d < 0 ? d + ndim() : d]; }
  int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::cpu(); }
  std::string str() const;  // "[4, 10] f32 cpu"

  // Typed access; throws when the dtype differs or an arena block was reset.
  float* f32() const;
  int32_t* i32() const;
  int64_t* i64() const;
  double* f64() const;

  // Same storage, new shape (one size may be -1); throws when the element counts differ.
  Tensor reshape(const Shape& shape) const;
  // Collapses dimensions start_dim.. into one: [N, C, H, W].flatten(1) is [N, C·H·W].
  Tensor flatten(int start_dim = 1) const;

  // Elementwise copy from another tensor of the same shape and dtype, on any devices.
  void copy_from(const Tensor& other);
  void fill(float value);
  // A copy on `device` (this tensor itself when it is already there).
  Tensor to(Device device) const;
  // Moves the storage to `device`, for this tensor and every tensor sharing its storage (a layer's
  // buffer and the module's list of buffers, say); not for arena tensors or wrapped memory.
  void relocate(Device device);

 private:
  void* raw() const;
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  DType dtype_ = DType::f32;
};

}  // namespace raisin
