// nvmlDeviceGetMemoryInfo (v1) and _v2: the device's physical memory as the
// whole node uses it. `used` is NodeState::used, which includes every context's
// overhead, as on a real GPU where context memory shows as used. A MIG device
// handle reports the MIG device's memory; a GPU in MIG mode reports its whole
// memory as total and its MIG devices' use as used.
#include "nvml_core.h"

using namespace simgpu;

namespace {

struct MemoryView {
  unsigned long long total, used, free;
};

// Dead processes are reaped first: the real driver returns a killed process's
// memory at once, so NVML must not show it as used.
nvmlReturn_t read_memory(nvmlDevice_t device, MemoryView* out) {
  nvml::Session s;
  int index = 0;
  if (nvmlReturn_t r = s.any_device(device, &index)) return r;
  s.node().reap_dead();
  out->total = s.state().devices[index].total_memory;
  out->used = used_memory(s.state(), index);
  if (out->used > out->total) out->used = out->total;  // never report free < 0
  out->free = out->total - out->used;
  return NVML_SUCCESS;
}

}  // namespace

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  MemoryView v;
  if (nvmlReturn_t r = read_memory(device, &v)) return r;
  if (!memory) return NVML_ERROR_INVALID_ARGUMENT;
  memory->total = v.total;
  memory->used = v.used;
  memory->free = v.free;
  return NVML_SUCCESS;
}

// v2 splits out memory reserved by the driver and firmware; the simulated
// device reserves none.
SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  MemoryView v;
  if (nvmlReturn_t r = read_memory(device, &v)) return r;
  if (!memory) return NVML_ERROR_INVALID_ARGUMENT;
  if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  memory->total = v.total;
  memory->reserved = 0;
  memory->used = v.used;
  memory->free = v.free;
  return NVML_SUCCESS;
}
