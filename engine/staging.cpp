// The upload ring.
#include "engine/staging.h"

#include <cstring>

#include "engine/backend.h"

namespace raisin {

UploadRing::UploadRing(Device device, size_t slot_bytes, int slots) : device_(device), slot_bytes_(slot_bytes) {
  if (slots < 1) throw error("upload ring: ", slots, " slots; it needs at least one");
  if (device.is_cpu()) return;
  const Backend& b = backend(device);
  for (int s = 0; s < slots; ++s) slots_.push_back(b.allocate_pinned(slot_bytes));
  fences_.assign(size_t(slots), 0);
}

UploadRing::~UploadRing() {
  if (slots_.empty()) return;
  // A destructor cannot report a failure (the device may already be in error, and an exception is
  // then being thrown with the first message): wait, release, and ignore further errors.
  try {
    const Backend& b = backend(device_);
    b.synchronize();  // no copy may still read a slot
    for (void* slot : slots_) b.release_pinned(slot, slot_bytes_);
  } catch (...) {
  }
}

void UploadRing::upload(void* device_destination, const void* source, size_t bytes) {
  if (bytes > slot_bytes_) throw error("upload ring: ", bytes, " bytes do not fit its ", slot_bytes_, "-byte slots");
  if (!bytes) return;
  if (device_.is_cpu()) {
    std::memcpy(device_destination, source, bytes);
    return;
  }
  const Backend& b = backend(device_);
  if (uploads_++ >= slots_.size()) b.fence_wait(fences_[next_]);
  std::memcpy(slots_[next_], source, bytes);
  b.copy_to_device_async(device_destination, slots_[next_], bytes);
  fences_[next_] = b.fence();
  next_ = (next_ + 1) % slots_.size();
}

}  // namespace raisin
