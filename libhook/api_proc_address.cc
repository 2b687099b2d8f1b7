// Exported wrappers: cuGetProcAddress and cuGetProcAddress_v2.
//
// The real driver answers first, for the caller's exact (name, version,
// flags): that picks the ABI the caller asked for (legacy or _v2, per-thread
// or legacy stream). If the answer is the real function behind one of our
// wrappers, the wrapper is returned instead, so a _ptsz request reaches the
// _ptsz wrapper and a lookup of "cuGetProcAddress" returns ours. Anything we
// do not hook is returned as the driver gave it.
#include "charging.h"
#include "hook_table.h"

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,
                                         CUdriverProcAddressQueryResult* symbolStatus) {
  VGPU_REAL_OR_RETURN(real, cuGetProcAddress_v2);
  CUresult r = real(symbol, pfn, cudaVersion, flags, symbolStatus);
  if (r == CUDA_SUCCESS && symbol && pfn) *pfn = redirect_to_wrapper(symbol, *pfn);
  return r;
}

VGPU_EXPORT CUresult cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags) {
  VGPU_REAL_OR_RETURN(real, cuGetProcAddress);
  CUresult r = real(symbol, pfn, cudaVersion, flags);
  if (r == CUDA_SUCCESS && symbol && pfn) *pfn = redirect_to_wrapper(symbol, *pfn);
  return r;
}
