// NVML's MIG queries: a GPU's MIG mode, its MIG device handles, and the
// identity of a MIG device handle (parent GPU, GPU and compute instance ids).
// A MIG device handle is a NodeState entry >= gpu_count (node_state.h); the
// other queries that accept one (UUID, name, memory, processes, PCI info)
// resolve it with Session::any_device.
//
// The simulated GPU is an H100, which supports MIG: a GPU not in MIG mode
// answers "disabled", never NOT_SUPPORTED. MIG mode cannot be changed at run
// time (nvmlDeviceSetMigMode is not exported); SIMGPU_MIG fixes it per node.
#include "nvml_core.h"

using namespace simgpu;
using nvml::Session;

namespace {

constexpr unsigned kMaxMigDevices = 7;  // an H100 has 7 compute slices

// The MIG device entry behind `handle`: INVALID_ARGUMENT for a GPU handle.
nvmlReturn_t mig_entry(const Session& s, nvmlDevice_t handle, int* entry) {
  if (nvmlReturn_t r = s.any_device(handle, entry)) return r;
  return s.state().devices[*entry].mig_parent >= 0 ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT;
}

}  // namespace

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int* currentMode,
                                                     unsigned int* pendingMode) {
  Session s;
  int index = 0;
  if (nvmlReturn_t r = s.device(device, &index)) return r;
  if (!currentMode || !pendingMode) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned mode = s.state().devices[index].mig_enabled ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
  *currentMode = mode;
  *pendingMode = mode;
  return NVML_SUCCESS;
}

// The most MIG devices the GPU could hold, 0 when MIG is not enabled (as
// documented) — not the number that exist: callers probe every index.
SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int* count) {
  Session s;
  int index = 0;
  if (nvmlReturn_t r = s.device(device, &index)) return r;
  if (!count) return NVML_ERROR_INVALID_ARGUMENT;
  *count = s.state().devices[index].mig_enabled ? kMaxMigDevices : 0;
  return NVML_SUCCESS;
}

// NOT_FOUND for an index below the maximum with no MIG device behind it.
SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                                    nvmlDevice_t* migDevice) {
  Session s;
  int gpu = 0;
  if (nvmlReturn_t r = s.device(device, &gpu)) return r;
  const NodeState& st = s.state();
  if (!migDevice || !st.devices[gpu].mig_enabled || index >= kMaxMigDevices) return NVML_ERROR_INVALID_ARGUMENT;
  for (int m = st.gpu_count; m < st.device_count; ++m) {
    if (st.devices[m].mig_parent == gpu && st.devices[m].mig_index == index) {
      *migDevice = nvml::handle_of(m);
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int* isMigDevice) {
  Session s;
  int entry = 0;
  if (nvmlReturn_t r = s.any_device(device, &entry)) return r;
  if (!isMigDevice) return NVML_ERROR_INVALID_ARGUMENT;
  *isMigDevice = s.state().devices[entry].mig_parent >= 0 ? 1 : 0;
  return NVML_SUCCESS;
}

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t migDevice,
                                                                             nvmlDevice_t* device) {
  Session s;
  int entry = 0;
  if (nvmlReturn_t r = mig_entry(s, migDevice, &entry)) return r;
  if (!device) return NVML_ERROR_INVALID_ARGUMENT;
  *device = nvml::handle_of(s.state().devices[entry].mig_parent);
  return NVML_SUCCESS;
}

// Both ids exist only for MIG device handles; a GPU handle is NOT_SUPPORTED.
namespace {
template <class Field>
nvmlReturn_t instance_id(nvmlDevice_t device, unsigned* id, Field field) {
  Session s;
  int entry = 0;
  if (nvmlReturn_t r = s.any_device(device, &entry)) return r;
  if (!id) return NVML_ERROR_INVALID_ARGUMENT;
  const DeviceInfo& d = s.state().devices[entry];
  if (d.mig_parent < 0) return NVML_ERROR_NOT_SUPPORTED;
  *id = field(d);
  return NVML_SUCCESS;
}
}  // namespace

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int* id) {
  return instance_id(device, id, [](const DeviceInfo& d) { return d.gpu_instance_id; });
}

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int* id) {
  return instance_id(device, id, [](const DeviceInfo& d) { return d.compute_instance_id; });
}
