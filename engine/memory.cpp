// The caching CPU allocator and the per-step arena.
#include "engine/memory.h"

#include <algorithm>
#include <cstdlib>
#include <unordered_map>
#include <mutex>
#include <new>

#include "engine/backend.h"

namespace raisin {

namespace {

struct Cache {
  std::mutex mutex;
  // Freed blocks by rounded size, reused last-in first-out (the most recently freed is warmest).
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  CpuAllocator::Stats stats;
  void free_all() {
    for (auto& [bytes, blocks] : free_blocks)
      for (void* data : blocks) std::free(data);
    free_blocks.clear();
    stats.cached_bytes = 0;
  }
  ~Cache() { free_all(); }
};

Cache& cache() {
  static Cache instance;
  return instance;
}

// Sizes are rounded up so that similar requests share blocks: to 64 bytes below 1 MiB, else to 1/8 of
// the next power of two.
size_t round_size(size_t bytes) {
  bytes = std::max<size_t>(bytes, 1);
  if (bytes < (size_t(1) << 20)) return (bytes + 63) & ~size_t(63);
  size_t power = size_t(1) << 20;
  while (power < bytes) power <<= 1;
  const size_t step = power / 8;
  return (bytes + step - 1) / step * step;
}

void* system_allocate(size_t bytes) {
  void* p = std::aligned_alloc(CpuAllocator::kAlignment, bytes);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

void* CpuAllocator::allocate(size_t bytes) {
  const size_t rounded = round_size(bytes);
  Cache& c = cache();
  {
    std::lock_guard lock(c.mutex);
    auto it = c.free_blocks.find(rounded);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= rounded;
      return p;
    }
    ++c.stats.system_allocations;
  }
  return system_allocate(rounded);
}

void CpuAllocator::release(void* data, size_t bytes) {
  if (!data) return;
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  const size_t rounded = round_size(bytes);
  c.free_blocks[rounded].push_back(data);
  c.stats.cached_bytes += rounded;
}

void CpuAllocator::trim() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  c.free_all();
}

CpuAllocator::Stats CpuAllocator::stats() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  return c.stats;
}

static size_t align_up(size_t bytes) {
  return (bytes + CpuAllocator::kAlignment - 1) & ~(CpuAllocator::kAlignment - 1);
}

Arena::Arena(size_t initial_bytes, Device device) : device_(device) {
  if (initial_bytes > 0) {
    capacity_ = align_up(initial_bytes);
    main_ = take_block(capacity_);
  }
}

Arena::~Arena() {
  give_back(main_);
  for (Block& b : overflow_) give_back(b);
}

// Host blocks come straight from the system (an arena's blocks are few and large, and a replaced one
// should go back, not sit in a cache); device blocks from the device's backend.
Arena::Block Arena::take_block(size_t bytes) {
  void* data = device_.is_cpu() ? system_allocate(bytes) : backend(device_).allocate(bytes);
  return {static_cast<char*>(data), bytes};
}

void Arena::give_back(Block block) {
  if (!block.data) return;
  if (device_.is_cpu()) std::free(block.data);
  else backend(device_).release(block.data, block.bytes);
}

void* Arena::allocate(size_t bytes) {
  bytes = align_up(std::max<size_t>(bytes, 1));
  used_ += bytes;
  high_water_ = std::max(high_water_, used_);
  if (main_used_ + bytes <= main_.bytes) {
    void* p = main_.data + main_used_;
    main_used_ += bytes;
    return p;
  }
  overflow_.push_back(take_block(bytes));
  return overflow_.back().data;
}

void Arena::reset() {
  if (!overflow_.empty()) {
    for (Block& b : overflow_) give_back(b);
    overflow_.clear();
    give_back(main_);
    capacity_ = align_up(high_water_);
    main_ = take_block(capacity_);
  }
  used_ = 0;
  main_used_ = 0;
  ++generation_;
}

}  // namespace raisin
