#include "device_map.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "log.h"
#include "real_driver.h"
#include "uuid_text.h"
#include "vgpu/nvml_subset.h"

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
  auto handle_fn = reinterpret_cast<PFN_nvmlDeviceGetHandleByIndex_v2>(real_nvml_symbol("nvmlDeviceGetHandleByIndex_v2"));
  auto uuid_fn = reinterpret_cast<PFN_nvmlDeviceGetUUID>(real_nvml_symbol("nvmlDeviceGetUUID"));
  unsigned count = 0;
  if (!init || !count_fn || !handle_fn || !uuid_fn || init() != NVML_SUCCESS || count_fn(&count) != NVML_SUCCESS) {
    if (std::getenv("CUDA_VISIBLE_DEVICES"))
      VGPU_LOG(LogLevel::kWarn, "NVML is unavailable: per-GPU limits follow CUDA ordinals, "
                                "which CUDA_VISIBLE_DEVICES renumbers");
    return;
  }
  for (unsigned i = 0; i < count && i < kMaxDevices; ++i) {
    nvmlDevice_t h = nullptr;
    char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    if (handle_fn(i, &h) != NVML_SUCCESS || uuid_fn(h, text, sizeof text) != NVML_SUCCESS ||
        !parse_uuid_text(text, uuids_[i]))
      std::memset(uuids_[i], 0, 16);  // unmatched: no ordinal maps to it
  }
  physical_count_ = static_cast<int>(count < kMaxDevices ? count : kMaxDevices);
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
  if (slot == -1) VGPU_LOG(LogLevel::kWarn, "CUDA device %d is not among NVML's devices; no quota applies", ordinal);
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
