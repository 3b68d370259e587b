// Memory for tensors. Persistent tensors (parameters, optimizer state) come from a caching allocator
// that keeps freed blocks by size for reuse; activations come from an Arena, a bump allocator that is
// reset once per training step, so a step allocates nothing after warm-up and addresses repeat
// (DESIGN.md principle 3).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace raisin {

// Aligned host allocations, cached by rounded size. Thread-safe.
class CpuAllocator {
 public:
  static constexpr size_t kAlignment = 64;
  static void* allocate(size_t bytes);
  static void release(void* data, size_t bytes);
  // Returns every cached block to the system.
  static void trim();
  struct Stats {
    size_t system_allocations = 0;  // blocks obtained from the system so far
    size_t cached_bytes = 0;        // bytes held for reuse
  };
  static Stats stats();
};

// A bump allocator for one step's activations, in the memory of one device. reset() frees everything at once; tensors from before
// the reset then throw on access. When a step needs more than the current block, the arena grows
// with overflow blocks and, at the next reset, replaces them with one block large enough for the
// whole step, so from then on each step reuses the same addresses.
class Arena {
 public:
  explicit Arena(size_t initial_bytes = 0, Device device = Device::cpu());
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* allocate(size_t bytes);
  void reset();

  Device device() const { return device_; }
  uint64_t generation() const { return generation_; }
  size_t capacity() const { return capacity_; }
  size_t high_water() const { return high_water_; }  // most bytes used in one step so far

 private:
  struct Block {
    char* data;
    size_t bytes;
  };
  Block take_block(size_t bytes);
  void give_back(Block block);

  Device device_;
  Block main_{nullptr, 0};
  std::vector<Block> overflow_;
  size_t used_ = 0;         // bytes handed out this step (all blocks)
  size_t main_used_ = 0;    // bytes handed out from main_
  size_t capacity_ = 0;
  size_t high_water_ = 0;
  uint64_t generation_ = 1;
};

}  // namespace raisin
