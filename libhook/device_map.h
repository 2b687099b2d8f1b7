// DeviceMap: which unit (a physical GPU, or a MIG device) a CUDA device
// ordinal or an NVML handle is.
//
// Quotas belong to units (vgpu/nvml_units.h): a GPU not in MIG mode, or one
// MIG device of a GPU in MIG mode. A unit's slot is its position in that
// enumeration — the NVML index on a node without MIG. It is found by
// matching UUIDs: the CUDA ordinal (which CUDA_VISIBLE_DEVICES and
// CUDA_DEVICE_ORDER renumber) is turned into a UUID with cuDeviceGetUuid_v2
// (the MIG UUID on a MIG device), and the UUID into the slot. Without NVML the
// ordinal is used as the slot, with a warning when CUDA_VISIBLE_DEVICES is set
// (limits may then follow the wrong GPU).
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
  // Slot of the unit whose NVML UUID string is `uuid` ("GPU-xxxxxxxx-..." or
  // "MIG-xxxxxxxx-..."); -1 if unknown (a GPU in MIG mode is no unit).
  int slot_of_uuid_text(const char* uuid);
  // The UUID of unit `slot` (GPU or MIG UUID); false if NVML does not know it.
  bool uuid_of_slot(int slot, unsigned char out[16]);
  // Forgets cached answers (the child after fork()).
  void reset();

 private:
  void load_physical();
  int lookup_uuid(const unsigned char uuid[16]);

  std::mutex mu_;
  bool loaded_ = false;
  int physical_count_ = 0;  // units; 0: NVML unavailable
  unsigned char uuids_[kMaxDevices][16] = {};
  std::atomic<int> ordinal_slot_[kMaxDevices];  // -2: not yet known
};

}  // namespace vgpu::hook
