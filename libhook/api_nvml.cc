// Exported wrappers: NVML's memory views (nvmlDeviceGetMemoryInfo v1 and v2),
// virtualized like cuMemGetInfo so tools and frameworks that size themselves
// through NVML also see the quota. The device is identified by its UUID.
#include "hook_core.h"
#include "memory_view.h"
#include "real_driver.h"
#include "vgpu/nvml_subset.h"

#define VGPU_NVML_EXPORT extern "C" __attribute__((visibility("default")))

namespace vgpu::hook {
namespace {

int slot_of_nvml_device(nvmlDevice_t device) {
  static auto uuid_fn = reinterpret_cast<PFN_nvmlDeviceGetUUID>(real_nvml_symbol("nvmlDeviceGetUUID"));
  char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
  if (!uuid_fn || uuid_fn(device, text, sizeof text) != NVML_SUCCESS) return -1;
  return HookCore::get().devices().slot_of_uuid_text(text);
}

}  // namespace
}  // namespace vgpu::hook

using namespace vgpu::hook;

VGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  static auto real = reinterpret_cast<PFN_nvmlDeviceGetMemoryInfo>(real_nvml_symbol("nvmlDeviceGetMemoryInfo"));
  if (!real) return NVML_ERROR_FUNCTION_NOT_FOUND;
  nvmlReturn_t r = real(device, memory);
  if (r != NVML_SUCCESS) return r;
  MemoryView v = virtual_view(slot_of_nvml_device(device), memory->free, memory->total);
  memory->total = v.total;
  memory->free = v.free;
  memory->used = v.total - v.free;
  return r;
}

VGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  static auto real = reinterpret_cast<PFN_nvmlDeviceGetMemoryInfo_v2>(real_nvml_symbol("nvmlDeviceGetMemoryInfo_v2"));
  if (!real) return NVML_ERROR_FUNCTION_NOT_FOUND;
  nvmlReturn_t r = real(device, memory);
  if (r != NVML_SUCCESS) return r;
  MemoryView v = virtual_view(slot_of_nvml_device(device), memory->free, memory->total);
  if (v.total == memory->total && v.free == memory->free) return r;  // no quota: untouched
  memory->total = v.total;
  memory->free = v.free;
  memory->reserved = 0;  // inside a quota everything not free is the tenant's
  memory->used = v.total - v.free;
  return r;
}
