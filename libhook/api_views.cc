// Exported wrappers: the memory views a program sizes itself by. With a quota
// on the device, total = min(quota, real total) and free = min(real free,
// quota − charged), so a framework sizing its cache by cuMemGetInfo stays
// inside the quota; without one, the real values pass through.
#include <algorithm>

#include "charging.h"
#include "memory_view.h"

using namespace vgpu::hook;

namespace vgpu::hook {

MemoryView virtual_view(int slot, uint64_t real_free, uint64_t real_total) {
  MemoryLedger& ledger = HookCore::get().ledger();
  uint64_t quota = slot < 0 ? kUnlimited : ledger.limit(slot);
  if (quota == kUnlimited) return {real_free, real_total};
  // Pools may have returned memory at a synchronization since their charge
  // was last settled: report what they keep now.
  HookCore::get().pools().settle_all(slot, ledger);
  uint64_t used = std::min(ledger.used(slot), quota);
  return {std::min(real_free, quota - used), std::min(real_total, quota)};
}

}  // namespace vgpu::hook

VGPU_EXPORT CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
  VGPU_REAL_OR_RETURN(real, cuMemGetInfo_v2);
  CUresult r = real(free, total);
  if (r != CUDA_SUCCESS) return r;
  MemoryView v = virtual_view(HookCore::get().current_slot(), *free, *total);
  *free = v.free;
  *total = v.total;
  return r;
}

VGPU_EXPORT CUresult cuMemGetInfo(unsigned int* free, unsigned int* total) {
  VGPU_REAL_OR_RETURN(real, cuMemGetInfo);
  CUresult r = real(free, total);
  if (r != CUDA_SUCCESS) return r;
  MemoryView v = virtual_view(HookCore::get().current_slot(), *free, *total);
  *free = static_cast<unsigned int>(v.free);
  *total = static_cast<unsigned int>(v.total);
  return r;
}

VGPU_EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuDeviceTotalMem_v2);
  CUresult r = real(bytes, dev);
  if (r == CUDA_SUCCESS) *bytes = virtual_view(HookCore::get().devices().slot_of_ordinal(dev), 0, *bytes).total;
  return r;
}

VGPU_EXPORT CUresult cuDeviceTotalMem(unsigned int* bytes, CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuDeviceTotalMem);
  CUresult r = real(bytes, dev);
  if (r == CUDA_SUCCESS)
    *bytes = static_cast<unsigned int>(virtual_view(HookCore::get().devices().slot_of_ordinal(dev), 0, *bytes).total);
  return r;
}
