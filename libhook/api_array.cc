// Exported wrappers: CUDA arrays and mipmapped arrays, charged by the size
// their descriptor describes (array_size.h) to the current device.
#include "array_size.h"
#include "charging.h"

namespace vgpu::hook {
namespace {

template <class Desc>
uint64_t descriptor_bytes(const Desc& d, uint64_t depth) {
  return array_bytes(d.Format, d.NumChannels, d.Width, d.Height, depth);
}

template <class Handle, class Call>
CUresult create_array(Handle* handle, const void* desc, uint64_t bytes, const char* api, Call call) {
  if (!handle || !desc) return call();
  HookCore& core = HookCore::get();
  int slot = core.current_slot();
  CUresult r = charged_call(slot, bytes, api, call);
  if (r == CUDA_SUCCESS) core.arrays().add(reinterpret_cast<uint64_t>(*handle), {slot, bytes, core.current_context()});
  return r;
}

template <class Handle, class Call>
CUresult destroy_array(Handle handle, Call call) {
  return uncharged_call(HookCore::get().arrays(), reinterpret_cast<uint64_t>(handle), call);
}

}  // namespace
}  // namespace vgpu::hook

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuArrayCreate_v2(CUarray* pHandle, const CUDA_ARRAY_DESCRIPTOR* d) {
  VGPU_REAL_OR_RETURN(real, cuArrayCreate_v2);
  return create_array(pHandle, d, d ? descriptor_bytes(*d, 0) : 0, "cuArrayCreate", [&] { return real(pHandle, d); });
}

VGPU_EXPORT CUresult cuArrayCreate(CUarray* pHandle, const CUDA_ARRAY_DESCRIPTOR_v1* d) {
  VGPU_REAL_OR_RETURN(real, cuArrayCreate);
  return create_array(pHandle, d, d ? descriptor_bytes(*d, 0) : 0, "cuArrayCreate", [&] { return real(pHandle, d); });
}

VGPU_EXPORT CUresult cuArray3DCreate_v2(CUarray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR* d) {
  VGPU_REAL_OR_RETURN(real, cuArray3DCreate_v2);
  return create_array(pHandle, d, d ? descriptor_bytes(*d, d->Depth) : 0, "cuArray3DCreate",
                      [&] { return real(pHandle, d); });
}

VGPU_EXPORT CUresult cuArray3DCreate(CUarray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR_v1* d) {
  VGPU_REAL_OR_RETURN(real, cuArray3DCreate);
  return create_array(pHandle, d, d ? descriptor_bytes(*d, d->Depth) : 0, "cuArray3DCreate",
                      [&] { return real(pHandle, d); });
}

VGPU_EXPORT CUresult cuArrayDestroy(CUarray hArray) {
  VGPU_REAL_OR_RETURN(real, cuArrayDestroy);
  return destroy_array(hArray, [&] { return real(hArray); });
}

VGPU_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR* d,
                                            unsigned int numMipmapLevels) {
  VGPU_REAL_OR_RETURN(real, cuMipmappedArrayCreate);
  return create_array(pHandle, d, d ? mipmapped_array_bytes(*d, numMipmapLevels) : 0, "cuMipmappedArrayCreate",
                      [&] { return real(pHandle, d, numMipmapLevels); });
}

VGPU_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray hMipmappedArray) {
  VGPU_REAL_OR_RETURN(real, cuMipmappedArrayDestroy);
  return destroy_array(hMipmappedArray, [&] { return real(hMipmappedArray); });
}
