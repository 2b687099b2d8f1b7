// Exported wrappers: stream-ordered allocation (cuMemAllocAsync,
// cuMemAllocFromPoolAsync, cuMemFreeAsync and their per-thread-stream _ptsz
// variants, each forwarding to the real function of the same ABI).
//
// The charge is taken when the allocation is enqueued and returned when its
// free is enqueued (not when the stream reaches it): the ledger follows what
// the program holds, which is what a quota is about. Memory a pool keeps
// cached after a free (its release threshold) is not charged.
#include "charging.h"
#include "real_driver.h"

namespace vgpu::hook {
namespace {

using CuStreamGetDevice = CUresult (*)(CUstream, CUdevice*);

// The device whose pool serves an allocation on `stream`.
int slot_of_stream(CUstream stream, bool per_thread) {
  static auto plain = reinterpret_cast<CuStreamGetDevice>(real_cuda_symbol("cuStreamGetDevice"));
  static auto ptsz = reinterpret_cast<CuStreamGetDevice>(real_cuda_symbol("cuStreamGetDevice_ptsz"));
  CuStreamGetDevice fn = per_thread && ptsz ? ptsz : plain;
  CUdevice dev = -1;
  HookCore& core = HookCore::get();
  if (fn && fn(stream, &dev) == CUDA_SUCCESS) return core.devices().slot_of_ordinal(dev);
  return core.current_slot();  // drivers before 12.8: the stream is in the current context
}

template <class Call>
CUresult alloc_async(CUdeviceptr* dptr, size_t bytes, CUstream stream, bool per_thread, const char* api,
                     Call call) {
  if (!dptr || bytes == 0) return call();
  HookCore& core = HookCore::get();
  int slot = slot_of_stream(stream, per_thread);
  CUresult r = charged_call(slot, bytes, api, call);
  if (r == CUDA_SUCCESS) core.pointers().add(*dptr, {slot, bytes, core.current_context()});
  return r;
}

}  // namespace
}  // namespace vgpu::hook

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemAllocAsync);
  return alloc_async(dptr, bytesize, hStream, false, "cuMemAllocAsync",
                     [&] { return real(dptr, bytesize, hStream); });
}

VGPU_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemAllocAsync_ptsz);
  return alloc_async(dptr, bytesize, hStream, true, "cuMemAllocAsync",
                     [&] { return real(dptr, bytesize, hStream); });
}

VGPU_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                             CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemAllocFromPoolAsync);
  return alloc_async(dptr, bytesize, hStream, false, "cuMemAllocFromPoolAsync",
                     [&] { return real(dptr, bytesize, pool, hStream); });
}

VGPU_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                                  CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemAllocFromPoolAsync_ptsz);
  return alloc_async(dptr, bytesize, hStream, true, "cuMemAllocFromPoolAsync",
                     [&] { return real(dptr, bytesize, pool, hStream); });
}

VGPU_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemFreeAsync);
  return uncharged_call(HookCore::get().pointers(), dptr, [&] { return real(dptr, hStream); });
}

VGPU_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemFreeAsync_ptsz);
  return uncharged_call(HookCore::get().pointers(), dptr, [&] { return real(dptr, hStream); });
}
