// Exported wrappers: linear device memory (cuMemAlloc, cuMemAllocPitch,
// cuMemAllocManaged, cuMemFree), legacy and current ABIs. Thin forwards into
// the charging protocol (charging.h).
#include <cstdint>

#include "charging.h"

namespace vgpu::hook {
namespace {

constexpr uint64_t kPitchEstimateAlignment = 512;  // the common driver pitch; corrected after the call

template <class Ptr, class Size, class Call>
CUresult alloc_linear(Ptr* dptr, Size bytes, const char* api, Call call) {
  if (!dptr || bytes == 0) return call();  // invalid: the driver reports it, nothing to charge
  HookCore& core = HookCore::get();
  int slot = core.current_slot();
  CUresult r = charged_call(slot, bytes, api, call);
  if (r == CUDA_SUCCESS) core.pointers().add(*dptr, {slot, bytes, core.current_context()});
  return r;
}

// Adjusts a pitched allocation's estimated charge to the real pitch × height.
// If more is needed and the quota has no room, the allocation is undone.
template <class Ptr, class Free>
CUresult settle_pitch(Ptr* dptr, int slot, uint64_t estimate, uint64_t actual, Free free_fn) {
  HookCore& core = HookCore::get();
  if (actual <= estimate) {
    core.uncharge(slot, estimate - actual);
  } else if (!core.charge(slot, actual - estimate, "cuMemAllocPitch")) {
    free_fn(*dptr);
    core.uncharge(slot, estimate);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  core.pointers().add(*dptr, {slot, actual, core.current_context()});
  return CUDA_SUCCESS;
}

template <class Ptr, class Size, class Call, class Free>
CUresult alloc_pitch(Ptr* dptr, Size* pitch, uint64_t width, uint64_t height, Call call, Free free_fn) {
  if (!dptr || !pitch || width == 0 || height == 0 || width > UINT32_MAX * 16ull || height > UINT32_MAX * 16ull)
    return call();
  HookCore& core = HookCore::get();
  int slot = core.current_slot();
  uint64_t estimate = (width + kPitchEstimateAlignment - 1) / kPitchEstimateAlignment * kPitchEstimateAlignment * height;
  CUresult r = charged_call(slot, estimate, "cuMemAllocPitch", call);
  if (r != CUDA_SUCCESS) return r;
  return settle_pitch(dptr, slot, estimate, uint64_t{*pitch} * height, free_fn);
}

}  // namespace
}  // namespace vgpu::hook

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  VGPU_REAL_OR_RETURN(real, cuMemAlloc_v2);
  return alloc_linear(dptr, bytesize, "cuMemAlloc", [&] { return real(dptr, bytesize); });
}

VGPU_EXPORT CUresult cuMemAlloc(CUdeviceptr_v1* dptr, unsigned int bytesize) {
  VGPU_REAL_OR_RETURN(real, cuMemAlloc);
  return alloc_linear(dptr, bytesize, "cuMemAlloc", [&] { return real(dptr, bytesize); });
}

VGPU_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pPitch, size_t WidthInBytes, size_t Height,
                                        unsigned int ElementSizeBytes) {
  VGPU_REAL_OR_RETURN(real, cuMemAllocPitch_v2);
  auto free_fn = VGPU_REAL(cuMemFree_v2);
  return alloc_pitch(dptr, pPitch, WidthInBytes, Height,
                     [&] { return real(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes); },
                     [&](CUdeviceptr p) { if (free_fn) free_fn(p); });
}

VGPU_EXPORT CUresult cuMemAllocPitch(CUdeviceptr_v1* dptr, unsigned int* pPitch, unsigned int WidthInBytes,
                                     unsigned int Height, unsigned int ElementSizeBytes) {
  VGPU_REAL_OR_RETURN(real, cuMemAllocPitch);
  auto free_fn = VGPU_REAL(cuMemFree);
  return alloc_pitch(dptr, pPitch, WidthInBytes, Height,
                     [&] { return real(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes); },
                     [&](CUdeviceptr_v1 p) { if (free_fn) free_fn(p); });
}

VGPU_EXPORT CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  VGPU_REAL_OR_RETURN(real, cuMemAllocManaged);
  if (!HookCore::get().config().charge_managed) return real(dptr, bytesize, flags);
  return alloc_linear(dptr, bytesize, "cuMemAllocManaged", [&] { return real(dptr, bytesize, flags); });
}

VGPU_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
  VGPU_REAL_OR_RETURN(real, cuMemFree_v2);
  return uncharged_call(HookCore::get().pointers(), dptr, [&] { return real(dptr); });
}

VGPU_EXPORT CUresult cuMemFree(CUdeviceptr_v1 dptr) {
  VGPU_REAL_OR_RETURN(real, cuMemFree);
  return uncharged_call(HookCore::get().pointers(), dptr, [&] { return real(dptr); });
}
