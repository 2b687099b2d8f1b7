#include "device_map.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "log.h"
#include "real_driver.h"
#include "uuid_text.h"
#include "vgpu/nvml_subset.h"
#include "vgpu/nvml_units.h"

namespace vgpu::hook {
namespace {

using CuDeviceGetUuid = int (*)(unsigned char*, int);  // CUuuid is 16 bytes

}  // namespace

DeviceMap::DeviceMap() {
  for (auto& s : ordinal_slot_) s.store(-2, std::memory_order_relaxed);
}

void DeviceMap::load_physical() {
  auto init = reinterpret_cast<PFN_nvmlInit_v2>(real_nvml_symbol("nvmlInit_v2"));
  auto count_fn = reinterpret_cast<PFN_nvmlDeviceGetCount_v2>(real_nvml_symbol("nvmlDeviceGetCount_v2"));
  auto uuid_fn = reinterpret_cast<PFN_nvmlDeviceGetUUID>(real_nvml_symbol("nvmlDeviceGetUUID"));
  NvmlUnitFunctions f;
  f.handle_by_index = reinterpret_cast<PFN_nvmlDeviceGetHandleByIndex_v2>(real_nvml_symbol("nvmlDeviceGetHandleByIndex_v2"));
  f.mig_mode = reinterpret_cast<PFN_nvmlDeviceGetMigMode>(real_nvml_symbol("nvmlDeviceGetMigMode"));
  f.max_mig_count = reinterpret_cast<PFN_nvmlDeviceGetMaxMigDeviceCount>(real_nvml_symbol("nvmlDeviceGetMaxMigDeviceCount"));
  f.mig_by_index =
      reinterpret_cast<PFN_nvmlDeviceGetMigDeviceHandleByIndex>(real_nvml_symbol("nvmlDeviceGetMigDeviceHandleByIndex"));
  unsigned count = 0;
  if (!init || !count_fn || !f.handle_by_index || !uuid_fn || init() != NVML_SUCCESS ||
      count_fn(&count) != NVML_SUCCESS) {
    if (std::getenv("CUDA_VISIBLE_DEVICES"))
      VGPU_LOG(LogLevel::kWarn, "NVML is unavailable: per-GPU limits follow CUDA ordinals, "
                                "which CUDA_VISIBLE_DEVICES renumbers");
    return;
  }
  int units = 0;
  for_each_nvml_unit(f, count, kMaxDevices, [&](nvmlDevice_t h, unsigned, int) {
    char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    if (uuid_fn(h, text, sizeof text) != NVML_SUCCESS || !parse_uuid_text(text, uuids_[units]))
      std::memset(uuids_[units], 0, 16);  // unmatched: no ordinal maps to it
    ++units;
  });
  // A GPU whose handle fails ends the list there: later slots would shift.
  physical_count_ = units;
}

int DeviceMap::lookup_uuid(const unsigned char uuid[16]) {
  std::lock_guard<std::mutex> g(mu_);
  if (!loaded_) {
    load_physical();
    loaded_ = true;
  }
  for (int i = 0; i < physical_count_; ++i)
    if (std::memcmp(uuids_[i], uuid, 16) == 0) return i;
  return physical_count_ == 0 ? -3 : -1;  // -3: no NVML, caller falls back to the ordinal
}

bool DeviceMap::uuid_of_slot(int slot, unsigned char out[16]) {
  std::lock_guard<std::mutex> g(mu_);
  if (!loaded_) {
    load_physical();
    loaded_ = true;
  }
  if (slot < 0 || slot >= physical_count_) return false;
  std::memcpy(out, uuids_[slot], 16);
  static const unsigned char kZero[16] = {};
  return std::memcmp(out, kZero, 16) != 0;
}

int DeviceMap::slot_of_ordinal(int ordinal) {
  if (ordinal < 0 || ordinal >= kMaxDevices) return -1;
  int cached = ordinal_slot_[ordinal].load(std::memory_order_acquire);
  if (cached != -2) return cached;
  auto get_uuid = reinterpret_cast<CuDeviceGetUuid>(real_cuda_symbol("cuDeviceGetUuid_v2"));
  if (!get_uuid) get_uuid = reinterpret_cast<CuDeviceGetUuid>(real_cuda_symbol("cuDeviceGetUuid"));
  unsigned char uuid[16];
  if (!get_uuid || get_uuid(uuid, ordinal) != 0) return -1;  // not cached: cuInit may come later
  int slot = lookup_uuid(uuid);
  if (slot == -3) slot = ordinal;
  if (slot == -1)
    VGPU_LOG(LogLevel::kWarn, "CUDA device %d is not among NVML's GPUs and MIG devices; no quota applies", ordinal);
  ordinal_slot_[ordinal].store(slot, std::memory_order_release);
  return slot;
}

int DeviceMap::slot_of_uuid_text(const char* text) {
  unsigned char uuid[16];
  if (!parse_uuid_text(text, uuid)) return -1;
  int slot = lookup_uuid(uuid);
  return slot < 0 ? -1 : slot;
}

void DeviceMap::reset() {
  new (&mu_) std::mutex();
  for (auto& s : ordinal_slot_) s.store(-2, std::memory_order_relaxed);
}

}  // namespace vgpu::hook
