// Host-to-device uploads that never wait for the device: each upload is copied into the next slot of a
// ring of pinned host buffers and from there, asynchronously, to its destination on the device. A slot is
// written again only after the fence taken behind its copy has passed, so the host can run up to `slots`
// uploads ahead of the device and no further. On the cpu an upload is a plain copy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace raisin {

class UploadRing {
 public:
  UploadRing(Device device, size_t slot_bytes, int slots = 64);
  ~UploadRing();
  UploadRing(const UploadRing&) = delete;
  UploadRing& operator=(const UploadRing&) = delete;

  // Queues a copy of `bytes` (at most slot_bytes) from host memory `source` to `device_destination`;
  // `source` may be reused as soon as this returns.
  void upload(void* device_destination, const void* source, size_t bytes);
  size_t slot_bytes() const { return slot_bytes_; }

 private:
  Device device_;
  size_t slot_bytes_;
  std::vector<void*> slots_;
  std::vector<uint64_t> fences_;  // per slot: the fence behind its last copy
  size_t next_ = 0;
  uint64_t uploads_ = 0;
};

}  // namespace raisin
