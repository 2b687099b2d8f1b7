// Exported wrappers: stream-ordered allocation (cuMemAllocAsync,
// cuMemAllocFromPoolAsync, cuMemFreeAsync and their per-thread-stream _ptsz
// variants, each forwarding to the real function of the same ABI).
//
// A pool is charged for the device memory it keeps (pool_charges.h), not per
// allocation: a pool keeps freed memory up to its release threshold, and
// that memory is as unavailable to other tenants as a live allocation.
// An allocation charges its size up front (over quota, after the hook has
// trimmed the process's pools: CUDA_ERROR_OUT_OF_MEMORY, the driver is not
// called), then the pool's charge is settled to RESERVED_MEM_CURRENT and the
// up-front charge returned; an allocation served from memory the pool
// already keeps costs nothing more. cuMemFreeAsync of pool memory returns no
// charge (the memory stays in the pool); that of cuMemAlloc memory returns
// its charge as cuMemFree would.
//
// Into a capturing stream each of these only adds a memory node to the
// graph (no memory is taken, the pool is not touched): it passes through
// untouched, and the graph's memory is charged when the graph is launched
// (graph_memory.h).
//
// Cost: each allocation also asks the driver whether the stream captures,
// for the stream's device, its current pool (cuMemAllocAsync) and the pool's
// reserved memory; each free whether the stream captures.
#include "charging.h"
#include "launch_gate.h"
#include "real_driver.h"

namespace vgpu::hook {
namespace {

using CuStreamGetDevice = CUresult (*)(CUstream, CUdevice*);
using CuCtxGetDevice = CUresult (*)(CUdevice*);
using CuDeviceGetMemPool = CUresult (*)(CUmemoryPool*, CUdevice);

// The device whose pool serves an allocation on `stream`, -1 if unknown.
CUdevice device_of_stream(CUstream stream, bool per_thread) {
  static auto plain = reinterpret_cast<CuStreamGetDevice>(real_cuda_symbol("cuStreamGetDevice"));
  static auto ptsz = reinterpret_cast<CuStreamGetDevice>(real_cuda_symbol("cuStreamGetDevice_ptsz"));
  static auto ctx_dev = reinterpret_cast<CuCtxGetDevice>(real_cuda_symbol("cuCtxGetDevice"));
  CuStreamGetDevice fn = per_thread && ptsz ? ptsz : plain;
  CUdevice dev = -1;
  if (fn && fn(stream, &dev) == CUDA_SUCCESS) return dev;
  // Drivers before 12.8: the stream is in the current context.
  if (ctx_dev && ctx_dev(&dev) == CUDA_SUCCESS) return dev;
  return -1;
}

// The pool cuMemAllocAsync draws from: the device's current pool.
CUmemoryPool current_pool(CUdevice dev) {
  static auto get = reinterpret_cast<CuDeviceGetMemPool>(real_cuda_symbol("cuDeviceGetMemPool"));
  CUmemoryPool pool = nullptr;
  if (dev < 0 || !get || get(&pool, dev) != CUDA_SUCCESS) return nullptr;
  return pool;
}

// `pool` null: the device's current pool (asked before the call, so the
// allocation is settled against the pool that served it).
template <class Call>
CUresult alloc_async(CUdeviceptr* dptr, size_t bytes, CUmemoryPool pool, CUstream stream, bool per_thread,
                     const char* api, Call call) {
  if (!dptr || bytes == 0 || gate_stream_capturing(stream, per_thread)) return call();
  HookCore& core = HookCore::get();
  CUdevice dev = device_of_stream(stream, per_thread);
  int slot = dev >= 0 ? core.devices().slot_of_ordinal(dev) : -1;
  if (!pool) pool = current_pool(dev);
  if (!core.charge(slot, bytes, api)) return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = call();
  // The up-front charge pays for the pool's growth; the rest is returned.
  // Done under the pool table's lock, so the ledger never holds less than
  // the pools keep while other threads reserve.
  if (r == CUDA_SUCCESS) core.pools().note_and_settle(reinterpret_cast<uint64_t>(pool), slot, core.ledger(), bytes);
  else core.uncharge(slot, bytes);
  return r;
}

}  // namespace
}  // namespace vgpu::hook

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemAllocAsync);
  return alloc_async(dptr, bytesize, nullptr, hStream, false, "cuMemAllocAsync",
                     [&] { return real(dptr, bytesize, hStream); });
}

VGPU_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemAllocAsync_ptsz);
  return alloc_async(dptr, bytesize, nullptr, hStream, true, "cuMemAllocAsync",
                     [&] { return real(dptr, bytesize, hStream); });
}

VGPU_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                             CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemAllocFromPoolAsync);
  return alloc_async(dptr, bytesize, pool, hStream, false, "cuMemAllocFromPoolAsync",
                     [&] { return real(dptr, bytesize, pool, hStream); });
}

VGPU_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                                  CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemAllocFromPoolAsync_ptsz);
  return alloc_async(dptr, bytesize, pool, hStream, true, "cuMemAllocFromPoolAsync",
                     [&] { return real(dptr, bytesize, pool, hStream); });
}

VGPU_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemFreeAsync);
  if (gate_stream_capturing(hStream, false)) return real(dptr, hStream);  // a free node: returned at launch
  return uncharged_call(HookCore::get().pointers(), dptr, [&] { return real(dptr, hStream); });
}

VGPU_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
  VGPU_REAL_OR_RETURN(real, cuMemFreeAsync_ptsz);
  if (gate_stream_capturing(hStream, true)) return real(dptr, hStream);  // a free node: returned at launch
  return uncharged_call(HookCore::get().pointers(), dptr, [&] { return real(dptr, hStream); });
}
