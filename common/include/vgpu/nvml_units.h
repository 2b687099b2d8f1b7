// The node's schedulable units as NVML lists them, in the one order vgpud and
// the hook both use (so that a unit's index means the same in VGPU_MEMORY_LIMIT_<n>,
// vgpud's config and the tenant memory): for each GPU in NVML index order,
// the GPU itself when it is not in MIG mode, otherwise each of its MIG
// devices in MIG device index order. A MIG device is isolated in hardware
// (its own memory and compute slices), so it is scheduled and limited on its
// own; a GPU in MIG mode is no unit itself (nothing runs on it directly).
//
// Header-only so that libvgpu.so (which links nothing but libc/libstdc++)
// and vgpud share it; NVML is reached through the caller's function pointers.
// Pure apart from those calls; thread-safe when NVML is.
#pragma once

#include "vgpu/nvml_subset.h"

namespace vgpu {

struct NvmlUnitFunctions {
  PFN_nvmlDeviceGetHandleByIndex_v2 handle_by_index = nullptr;  // required
  // Optional: without them (an NVML before MIG) every GPU is one unit.
  PFN_nvmlDeviceGetMigMode mig_mode = nullptr;
  PFN_nvmlDeviceGetMaxMigDeviceCount max_mig_count = nullptr;
  PFN_nvmlDeviceGetMigDeviceHandleByIndex mig_by_index = nullptr;
};

// Calls visit(handle, gpu_index, mig_index) for each unit, mig_index = -1 for
// a whole GPU, and stops after `max_units` units. Returns the number of units
// visited, or -1 if a GPU's handle cannot be had (gpu_index in *failed_gpu).
template <class Visit>
int for_each_nvml_unit(const NvmlUnitFunctions& f, unsigned gpu_count, int max_units, Visit visit,
                       unsigned* failed_gpu = nullptr) {
  int units = 0;
  for (unsigned i = 0; i < gpu_count && units < max_units; ++i) {
    nvmlDevice_t gpu = nullptr;
    if (f.handle_by_index(i, &gpu) != NVML_SUCCESS) {
      if (failed_gpu) *failed_gpu = i;
      return -1;
    }
    unsigned current = NVML_DEVICE_MIG_DISABLE, pending = 0, max = 0;
    bool mig = f.mig_mode && f.max_mig_count && f.mig_by_index && f.mig_mode(gpu, &current, &pending) == NVML_SUCCESS &&
               current == NVML_DEVICE_MIG_ENABLE && f.max_mig_count(gpu, &max) == NVML_SUCCESS;
    if (!mig) {
      visit(gpu, i, -1);
      ++units;
      continue;
    }
    // Indexes below the maximum may be empty (NOT_FOUND): probe them all.
    for (unsigned m = 0; m < max && units < max_units; ++m) {
      nvmlDevice_t dev = nullptr;
      if (f.mig_by_index(gpu, m, &dev) != NVML_SUCCESS) continue;
      visit(dev, i, static_cast<int>(m));
      ++units;
    }
  }
  return units;
}

}  // namespace vgpu
