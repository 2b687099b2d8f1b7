// DeviceMap: which physical GPU a CUDA device ordinal or an NVML handle is.
//
// Quotas belong to physical GPUs. A GPU's slot is its NVML index, found by
// matching UUIDs: the CUDA ordinal (which CUDA_VISIBLE_DEVICES and
// CUDA_DEVICE_ORDER renumber) is turned into a UUID with cuDeviceGetUuid, and
// the UUID into the NVML index. Without NVML the ordinal is used as the slot,
// with a warning when CUDA_VISIBLE_DEVICES is set (limits may then follow the
// wrong GPU).
//
// Thread-safety: all methods are thread-safe; results are cached.
#pragma once

#include <atomic>
#include <mutex>

#include "options.h"

namespace vgpu::hook {

class DeviceMap {
 public:
  DeviceMap();
  // Slot of CUDA device `ordinal`; -1 if the driver does not know it.
  int slot_of_ordinal(int ordinal);
  // Slot of the GPU whose NVML UUID string is `uuid` ("GPU-xxxxxxxx-..."); -1 if unknown.
  int slot_of_uuid_text(const char* uuid);
  // The UUID of physical GPU `slot` (NVML index); false if NVML does not know it.
  bool uuid_of_slot(int slot, unsigned char out[16]);
  // Forgets cached answers (the child after fork()).
  void reset();

 private:
  void load_physical();
  int lookup_uuid(const unsigned char uuid[16]);

  std::mutex mu_;
  bool loaded_ = false;
  int physical_count_ = 0;  // 0: NVML unavailable
  unsigned char uuids_[kMaxDevices][16] = {};
  std::atomic<int> ordinal_slot_[kMaxDevices];  // -2: not yet known
};

}  // namespace vgpu::hook
