// The caching device allocator, pinned host memory, asynchronous copies and fences (memory.h).
#include "kernels/cuda/memory.h"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <string>

namespace raisin::cuda {

namespace {

size_t round_up(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }

std::string mib(int64_t bytes) { return std::to_string(bytes / (1 << 20)) + " MiB"; }

}  // namespace

// ---- CachingAllocator ----

size_t CachingAllocator::size_class(size_t bytes) {
  constexpr size_t kSmallStep = 512, kSmallLimit = size_t(1) << 20;
  if (bytes <= kSmallLimit) return round_up(bytes == 0 ? 1 : bytes, kSmallStep);
  const size_t below = std::bit_floor(bytes - 1);  // 2^k < bytes ≤ 2^(k+1)
  return round_up(bytes, below / 4);
}

CachingAllocator::~CachingAllocator() {
  // A destructor cannot report a failure; cudaFree only fails here if CUDA itself is already gone.
  for (auto& [ptr, block] : in_use_) cudaFree(ptr);
  for (auto& [key, blocks] : free_lists_)
    for (void* ptr : blocks) cudaFree(ptr);
  for (auto& [id, lists] : pools_)
    for (auto& [key, blocks] : lists)
      for (void* ptr : blocks) cudaFree(ptr);
}

void* CachingAllocator::take(FreeLists& lists, cudaStream_t stream, size_t size) {
  auto cached = lists.find({stream, size});
  if (cached == lists.end() || cached->second.empty()) return nullptr;
  void* ptr = cached->second.back();
  cached->second.pop_back();
  return ptr;
}

void* CachingAllocator::allocate(size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return nullptr;
  const size_t size = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* ptr = active_pool_ != 0 ? take(pools_.at(active_pool_), stream, size) : nullptr;
  if (ptr != nullptr) {
    stats_.bytes_pooled -= int64_t(size);
  } else if ((ptr = take(free_lists_, stream, size)) != nullptr) {
    stats_.bytes_cached -= int64_t(size);
  } else {
    cudaError_t status = cudaMalloc(&ptr, size);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it, give the cache back and try once more
      release_cache_locked();
      status = cudaMalloc(&ptr, size);
    }
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      throw std::runtime_error("out of GPU memory: cudaMalloc of " + std::to_string(size) + " bytes failed with " +
                               mib(stats_.bytes_in_use) + " in use by raisin and nothing left cached; use a " +
                               "smaller batch size or model, or free the GPU from other processes");
    }
    RAISIN_CUDA_CHECK(status);
    stats_.device_mallocs++;
  }
  in_use_[ptr] = Block{size, stream, active_pool_};
  stats_.bytes_in_use += int64_t(size);
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return ptr;
}

void CachingAllocator::free(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_use_.find(ptr);
  if (it == in_use_.end())
    throw std::invalid_argument("CachingAllocator::free: the pointer was not handed out by this allocator, or "
                                "was freed already");
  const Block block = it->second;
  in_use_.erase(it);
  stats_.bytes_in_use -= int64_t(block.bytes);
  const auto pool = block.pool != 0 ? pools_.find(block.pool) : pools_.end();
  if (pool != pools_.end()) {
    pool->second[{block.stream, block.bytes}].push_back(ptr);
    stats_.bytes_pooled += int64_t(block.bytes);
  } else {
    free_lists_[{block.stream, block.bytes}].push_back(ptr);
    stats_.bytes_cached += int64_t(block.bytes);
  }
}

uint64_t CachingAllocator::begin_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (active_pool_ != 0)
    throw std::logic_error("CachingAllocator::begin_pool: pool " + std::to_string(active_pool_) +
                           " is begun already; end it first (captures do not nest)");
  active_pool_ = next_pool_++;
  pools_[active_pool_];
  return active_pool_;
}

void CachingAllocator::end_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (active_pool_ == 0) throw std::logic_error("CachingAllocator::end_pool: no pool is begun");
  active_pool_ = 0;
}

void CachingAllocator::release_pool(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (id == active_pool_)
    throw std::logic_error("CachingAllocator::release_pool: pool " + std::to_string(id) + " is still begun; end it first");
  const auto pool = pools_.find(id);
  if (pool == pools_.end())
    throw std::invalid_argument("CachingAllocator::release_pool: pool " + std::to_string(id) +
                                " was never begun or is released already");
  for (auto& [key, blocks] : pool->second) {
    std::vector<void*>& general = free_lists_[key];
    general.insert(general.end(), blocks.begin(), blocks.end());
    stats_.bytes_pooled -= int64_t(key.second * blocks.size());
    stats_.bytes_cached += int64_t(key.second * blocks.size());
  }
  pools_.erase(pool);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cache_locked();
}

void CachingAllocator::release_cache_locked() {
  for (auto& [key, blocks] : free_lists_) {
    for (void* ptr : blocks) {
      RAISIN_CUDA_CHECK(cudaFree(ptr));
      stats_.device_frees++;
      stats_.bytes_cached -= int64_t(key.second);
    }
  }
  free_lists_.clear();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

CachingAllocator& device_allocator() {
  static std::mutex mutex;
  static std::vector<CachingAllocator*>& per_device = *new std::vector<CachingAllocator*>;
  int device = 0;
  RAISIN_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  if (int(per_device.size()) <= device) per_device.resize(device + 1, nullptr);
  if (per_device[device] == nullptr) per_device[device] = new CachingAllocator;
  return *per_device[device];
}

// ---- asynchronous transfers ----

void* allocate_pinned(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = nullptr;
  RAISIN_CUDA_CHECK(cudaMallocHost(&ptr, bytes));
  return ptr;
}

void free_pinned(void* ptr) {
  if (ptr) RAISIN_CUDA_CHECK(cudaFreeHost(ptr));
}

void copy_to_device_async(void* device_dst, const void* pinned_src, size_t bytes) {
  if (bytes)
    RAISIN_CUDA_CHECK(cudaMemcpyAsync(device_dst, pinned_src, bytes, cudaMemcpyHostToDevice, current_stream()));
}

void copy_to_host_async(void* pinned_dst, const void* device_src, size_t bytes) {
  if (bytes)
    RAISIN_CUDA_CHECK(cudaMemcpyAsync(pinned_dst, device_src, bytes, cudaMemcpyDeviceToHost, current_stream()));
}

// ---- FencePool ----

FencePool::FencePool(int max_pending) : max_pending_(size_t(max_pending)) {
  if (max_pending < 1)
    throw std::invalid_argument("FencePool: max_pending is " + std::to_string(max_pending) + "; it must be at least 1");
}

FencePool::~FencePool() {
  // A destructor cannot report a failure; cudaEventDestroy only fails here if CUDA itself is already gone.
  for (const auto& slot : slots_) cudaEventDestroy(slot->event);
}

uint64_t FencePool::record(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (pending_.size() >= max_pending_) retire_oldest_locked();
  if (idle_.empty()) {
    auto slot = std::make_unique<Slot>();
    RAISIN_CUDA_CHECK(cudaEventCreateWithFlags(&slot->event, cudaEventDisableTiming | cudaEventBlockingSync));
    idle_.push_back(slot.get());
    slots_.push_back(std::move(slot));
  }
  Slot* slot = idle_.back();
  RAISIN_CUDA_CHECK(cudaEventRecord(slot->event, stream));
  idle_.pop_back();
  slot->ticket = next_ticket_++;
  pending_.push_back(slot);
  return slot->ticket;
}

void FencePool::retire_oldest_locked() {
  Slot* oldest = pending_.front();
  RAISIN_CUDA_CHECK(cudaEventSynchronize(oldest->event));
  pending_.pop_front();
  passed_ = oldest->ticket;
  if (oldest->waiters > 0)
    oldest->retired = true;
  else
    idle_.push_back(oldest);
}

void FencePool::wait(uint64_t ticket) {
  Slot* slot = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ticket <= passed_) return;
    if (ticket >= next_ticket_)
      throw std::invalid_argument("FencePool::wait: ticket " + std::to_string(ticket) + " was never handed out " +
                                  "(the latest is " + std::to_string(next_ticket_ - 1) +
                                  "); wait only for tickets that fence() returned");
    slot = pending_[size_t(ticket - passed_ - 1)];
    ++slot->waiters;
  }
  // Without the lock, so that fences can be taken meanwhile; the slot is not recorded again while waited on.
  const cudaError_t status = cudaEventSynchronize(slot->event);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--slot->waiters == 0 && slot->retired) {
      slot->retired = false;
      idle_.push_back(slot);
    }
  }
  RAISIN_CUDA_CHECK(status);
}

uint64_t FencePool::passed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return passed_;
}

FencePool& fence_pool() {
  static FencePool& pool = *new FencePool;
  return pool;
}

uint64_t fence() { return fence_pool().record(current_stream()); }
void fence_wait(uint64_t ticket) { fence_pool().wait(ticket); }

}  // namespace raisin::cuda
