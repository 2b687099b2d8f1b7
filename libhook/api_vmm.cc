// Exported wrappers: virtual memory management. Physical memory is taken by
// cuMemCreate (charged to prop->location's device) and returned by
// cuMemRelease; cuMemMap/cuMemUnmap only change mappings and are not hooked.
#include "charging.h"

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size, const CUmemAllocationProp* prop,
                                 unsigned long long flags) {
  VGPU_REAL_OR_RETURN(real, cuMemCreate);
  auto call = [&] { return real(handle, size, prop, flags); };
  if (!handle || !prop || size == 0 || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) return call();
  HookCore& core = HookCore::get();
  int slot = core.devices().slot_of_ordinal(prop->location.id);
  CUresult r = charged_call(slot, size, "cuMemCreate", call);
  if (r == CUDA_SUCCESS) core.vmm().add(*handle, {slot, size});
  return r;
}

VGPU_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  VGPU_REAL_OR_RETURN(real, cuMemRelease);
  return uncharged_call(HookCore::get().vmm(), handle, [&] { return real(handle); });
}
