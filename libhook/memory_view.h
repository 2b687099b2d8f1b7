// The virtualized memory view of a device (cuMemGetInfo, cuDeviceTotalMem,
// nvmlDeviceGetMemoryInfo): never more than the real values, and within the
// quota when the device has one. Thread-safe.
#pragma once

#include <cstdint>

namespace vgpu::hook {

struct MemoryView {
  uint64_t free;
  uint64_t total;
};

// The view of slot `slot` given the driver's real free and total bytes.
MemoryView virtual_view(int slot, uint64_t real_free, uint64_t real_total);

}  // namespace vgpu::hook
