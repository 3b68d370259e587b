// The kernel side of the CUDA emulator: what a kernels/cuda/*.cu source sees when g++ compiles it with
// RAISIN_CUDA_EMULATED=1 (through kernels/cuda/compat.h). Every CUDA thread runs as a fiber; the threads of
// a block take turns on one OS thread, switching only at __syncthreads, __syncwarp and the warp
// intrinsics, so __shared__ becomes per-OS-thread static storage. Barrier divergence, deadlocks and fiber
// stack overflows fail the launch with a message naming the kernel, the threads and the call sites. A launch
// on a stream that captures a graph is recorded instead (kernels/emu/capture.h).
#pragma once
#include <math.h>

#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <source_location>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/emu/capture.h"
#include "kernels/emu/runtime.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// One instance per OS thread, and the blocks of a launch run one at a time on each OS thread.
#define __shared__ static thread_local

inline constexpr int warpSize = 32;

// Set by the emulator before it resumes a CUDA thread; read-only for kernels, as on the GPU.
extern thread_local constinit uint3 threadIdx;
extern thread_local constinit uint3 blockIdx;
extern thread_local constinit dim3 blockDim;
extern thread_local constinit dim3 gridDim;

namespace raisin::emu {

// The points where a CUDA thread waits for others.
enum class SyncKind : uint8_t { syncthreads, syncwarp, shfl, shfl_up, shfl_down, shfl_xor, ballot, any, all };

// Suspends the calling CUDA thread until every thread of its block arrived at a __syncthreads.
void syncthreads(const std::source_location& where);
// Suspends the calling CUDA thread until every lane named in `mask` arrived at the same warp operation,
// then returns this lane's result: the source lane's `value` for shuffles (lane_argument is the source
// lane, delta or lane mask), the vote bits for ballot, 0/1 for any and all.
uint64_t warp_exchange(SyncKind kind, unsigned mask, uint64_t value, int lane_argument, int width,
                       const std::source_location& where);

// The launch's dynamic shared memory on this OS thread (16-byte aligned).
void* dynamic_shared_memory();

template <typename T>
uint64_t to_bits(T value) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp shuffles move values of up to 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  return bits;
}

template <typename T>
T from_bits(uint64_t bits) {
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

template <typename T>
concept AtomicValue = std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long> ||
                      std::is_same_v<T, float> || std::is_same_v<T, double>;

struct LaunchConfig {
  const char* kernel;  // as written in RAISIN_LAUNCH
  const char* file;    // where it was launched
  int line;
  dim3 grid, block;
  size_t shared_bytes;
};

// Runs body(argument) once per CUDA thread of config's grid; errors become the host thread's last error.
// Returns cudaSuccess or that error.
cudaError_t launch(const LaunchConfig& config, void (*body)(const void*), const void* argument);
// "kernel K launched at F:L with grid G and block B", for error messages.
std::string describe(const LaunchConfig& config);
// Where a launch on `stream` goes (capture.h).
Route route(cudaStream_t stream, const LaunchConfig& config);

// RAISIN_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...): converts the arguments to the kernel's
// parameter types once, as a call would, and gives every CUDA thread its own copy. When the stream captures
// a graph, the graph keeps the converted arguments and launches with them at each replay.
template <typename... Params>
class Launch {
 public:
  Launch(void (*kernel)(Params...), LaunchConfig config, cudaStream_t stream)
      : kernel_(kernel), config_(config), stream_(stream) {}

  template <typename... Args>
  void operator()(Args&&... args) const {
    static_assert(sizeof...(Args) == sizeof...(Params), "the kernel takes a different number of arguments");
    switch (route(stream_, config_)) {
      case Route::run: {
        const Bound bound{kernel_, std::tuple<Params...>(std::forward<Args>(args)...)};
        launch(config_, &Bound::run, &bound);
        return;
      }
      case Route::record: {
        const auto bound = std::make_shared<const Bound>(kernel_, std::tuple<Params...>(std::forward<Args>(args)...));
        record(stream_, [config = config_, bound] { return launch(config, &Bound::run, bound.get()); });
        return;
      }
      case Route::refused: return;  // the launch error is the last error already
    }
  }

 private:
  struct Bound {
    void (*kernel)(Params...);
    std::tuple<Params...> args;
    static void run(const void* self) {
      const Bound& bound = *static_cast<const Bound*>(self);
      std::apply(bound.kernel, bound.args);
    }
  };
  void (*kernel_)(Params...);
  LaunchConfig config_;
  cudaStream_t stream_;
};

template <typename... Params>
Launch<Params...> make_launch(void (*kernel)(Params...), const char* name, const char* file, int line, dim3 grid,
                              dim3 block, size_t shared_bytes, cudaStream_t stream) {
  return Launch<Params...>(kernel, LaunchConfig{name, file, line, grid, block, shared_bytes}, stream);
}

}  // namespace raisin::emu

#define RAISIN_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  ::raisin::emu::make_launch(kernel, #kernel, __FILE__, __LINE__, grid, block, shared_bytes, stream)

// ---- barriers and warp intrinsics (the call site is captured for error messages) ----

inline void __syncthreads(const std::source_location& where = std::source_location::current()) {
  raisin::emu::syncthreads(where);
}

inline void __syncwarp(unsigned mask = 0xffffffffu, const std::source_location& where = std::source_location::current()) {
  raisin::emu::warp_exchange(raisin::emu::SyncKind::syncwarp, mask, 0, 0, warpSize, where);
}

template <typename T>
T __shfl_sync(unsigned mask, T value, int source_lane, int width = warpSize,
              const std::source_location& where = std::source_location::current()) {
  using namespace raisin::emu;
  return from_bits<T>(warp_exchange(SyncKind::shfl, mask, to_bits(value), source_lane, width, where));
}

template <typename T>
T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = warpSize,
                 const std::source_location& where = std::source_location::current()) {
  using namespace raisin::emu;
  return from_bits<T>(warp_exchange(SyncKind::shfl_up, mask, to_bits(value), int(delta), width, where));
}

template <typename T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = warpSize,
                   const std::source_location& where = std::source_location::current()) {
  using namespace raisin::emu;
  return from_bits<T>(warp_exchange(SyncKind::shfl_down, mask, to_bits(value), int(delta), width, where));
}

template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = warpSize,
                  const std::source_location& where = std::source_location::current()) {
  using namespace raisin::emu;
  return from_bits<T>(warp_exchange(SyncKind::shfl_xor, mask, to_bits(value), lane_mask, width, where));
}

inline unsigned __ballot_sync(unsigned mask, int predicate,
                              const std::source_location& where = std::source_location::current()) {
  using namespace raisin::emu;
  return unsigned(warp_exchange(SyncKind::ballot, mask, predicate != 0, 0, warpSize, where));
}

inline int __any_sync(unsigned mask, int predicate, const std::source_location& where = std::source_location::current()) {
  using namespace raisin::emu;
  return int(warp_exchange(SyncKind::any, mask, predicate != 0, 0, warpSize, where));
}

inline int __all_sync(unsigned mask, int predicate, const std::source_location& where = std::source_location::current()) {
  using namespace raisin::emu;
  return int(warp_exchange(SyncKind::all, mask, predicate != 0, 0, warpSize, where));
}

inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// ---- atomics: real atomics, since blocks run in parallel on several OS threads ----

template <raisin::emu::AtomicValue T>
T atomicAdd(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_add(value, std::memory_order_relaxed);
}

template <raisin::emu::AtomicValue T>
  requires std::is_integral_v<T>
T atomicSub(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_sub(value, std::memory_order_relaxed);
}

template <raisin::emu::AtomicValue T>
T atomicExch(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).exchange(value, std::memory_order_relaxed);
}

template <raisin::emu::AtomicValue T>
  requires std::is_integral_v<T>
T atomicCAS(T* address, std::type_identity_t<T> compare, std::type_identity_t<T> value) {
  std::atomic_ref<T>(*address).compare_exchange_strong(compare, value, std::memory_order_relaxed);
  return compare;  // the old value, whether or not it was replaced
}

template <raisin::emu::AtomicValue T>
  requires std::is_integral_v<T>
T atomicMax(T* address, std::type_identity_t<T> value) {
  std::atomic_ref<T> target(*address);
  T old = target.load(std::memory_order_relaxed);
  while (old < value && !target.compare_exchange_weak(old, value, std::memory_order_relaxed)) {
  }
  return old;
}

template <raisin::emu::AtomicValue T>
  requires std::is_integral_v<T>
T atomicMin(T* address, std::type_identity_t<T> value) {
  std::atomic_ref<T> target(*address);
  T old = target.load(std::memory_order_relaxed);
  while (old > value && !target.compare_exchange_weak(old, value, std::memory_order_relaxed)) {
  }
  return old;
}

// ---- math that CUDA has and the C library lacks ----

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
// A round-to-nearest product that nvcc never fuses with an add into an fma (g++ does not fuse here either).
inline double __dmul_rn(double a, double b) { return a * b; }

// CUDA's min/max for mixed integer and floating types, with the usual arithmetic conversions.
template <typename A, typename B>
  requires std::is_arithmetic_v<A> && std::is_arithmetic_v<B>
constexpr std::common_type_t<A, B> min(A a, B b) {
  using T = std::common_type_t<A, B>;
  return T(b) < T(a) ? T(b) : T(a);
}

template <typename A, typename B>
  requires std::is_arithmetic_v<A> && std::is_arithmetic_v<B>
constexpr std::common_type_t<A, B> max(A a, B b) {
  using T = std::common_type_t<A, B>;
  return T(a) < T(b) ? T(b) : T(a);
}
