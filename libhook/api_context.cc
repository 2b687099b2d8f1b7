// Exported wrappers: contexts, charged VGPU_CONTEXT_OVERHEAD each (a real
// context takes device memory for its local memory, printf buffer and heap).
// A created context is charged from cuCtxCreate to cuCtxDestroy; a device's
// primary context from its first retain until a release or reset leaves it
// inactive (asked of the driver with cuDevicePrimaryCtxGetState).
#include <unistd.h>

#include <mutex>

#include "charging.h"
#include "launch_gate.h"
#include "real_driver.h"

namespace vgpu::hook {
namespace {

using PrimaryGetState = CUresult (*)(CUdevice, unsigned int*, int*);

struct PrimaryCharge {
  std::mutex mu;
  bool charged = false;
  int slot = -1;
  pid_t pid = 0;  // a charge made before fork() does not exist in the child
  bool held() const { return charged && pid == getpid(); }
};
PrimaryCharge g_primary[kMaxDevices];

template <class Call>
CUresult create_context(CUcontext* pctx, CUdevice dev, Call call) {
  HookCore& core = HookCore::get();
  uint64_t bytes = core.config().context_overhead;
  if (!pctx) return call();
  int slot = core.devices().slot_of_ordinal(dev);
  CUresult r = bytes == 0 ? call() : charged_call(slot, bytes, "cuCtxCreate", call);
  if (r != CUDA_SUCCESS) return r;
  if (bytes) core.contexts().add(reinterpret_cast<uint64_t>(*pctx), {slot, bytes});
  gate_note_context(*pctx, slot);
  return r;
}

template <class Call>
CUresult retain_primary_charged(CUdevice dev, Call call) {
  HookCore& core = HookCore::get();
  uint64_t bytes = core.config().context_overhead;
  if (bytes == 0 || dev < 0 || dev >= kMaxDevices) return call();
  PrimaryCharge& p = g_primary[dev];
  std::lock_guard<std::mutex> g(p.mu);
  if (p.held()) return call();
  int slot = core.devices().slot_of_ordinal(dev);
  CUresult r = charged_call(slot, bytes, "cuDevicePrimaryCtxRetain", call);
  if (r == CUDA_SUCCESS) {
    p.charged = true;
    p.slot = slot;
    p.pid = getpid();
  }
  return r;
}

template <class Call>
CUresult retain_primary(CUcontext* pctx, CUdevice dev, Call call) {
  CUresult r = retain_primary_charged(dev, call);
  if (r == CUDA_SUCCESS && pctx) gate_note_context(*pctx, HookCore::get().devices().slot_of_ordinal(dev));
  return r;
}

// After a release or reset: returns the charge if the primary context is gone.
template <class Call>
CUresult release_primary(CUdevice dev, Call call) {
  if (dev < 0 || dev >= kMaxDevices) return call();
  PrimaryCharge& p = g_primary[dev];
  std::lock_guard<std::mutex> g(p.mu);
  CUresult r = call();
  static auto get_state = reinterpret_cast<PrimaryGetState>(real_cuda_symbol("cuDevicePrimaryCtxGetState"));
  unsigned flags = 0;
  int active = 1;
  if (r == CUDA_SUCCESS && p.held() && get_state && get_state(dev, &flags, &active) == CUDA_SUCCESS && !active) {
    HookCore::get().uncharge(p.slot, HookCore::get().config().context_overhead);
    p.charged = false;
  }
  return r;
}

CUresult destroy_context(CUcontext ctx, CUresult (*real)(CUcontext)) {
  gate_forget_context(ctx);
  return uncharged_call(HookCore::get().contexts(), reinterpret_cast<uint64_t>(ctx), [&] { return real(ctx); });
}

}  // namespace
}  // namespace vgpu::hook

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuCtxCreate(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuCtxCreate);
  return create_context(pctx, dev, [&] { return real(pctx, flags, dev); });
}

VGPU_EXPORT CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuCtxCreate_v2);
  return create_context(pctx, dev, [&] { return real(pctx, flags, dev); });
}

VGPU_EXPORT CUresult cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* paramsArray, int numParams,
                                    unsigned int flags, CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuCtxCreate_v3);
  return create_context(pctx, dev, [&] { return real(pctx, paramsArray, numParams, flags, dev); });
}

VGPU_EXPORT CUresult cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* params, unsigned int flags, CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuCtxCreate_v4);
  return create_context(pctx, dev, [&] { return real(pctx, params, flags, dev); });
}

VGPU_EXPORT CUresult cuCtxDestroy(CUcontext ctx) {
  VGPU_REAL_OR_RETURN(real, cuCtxDestroy);
  return destroy_context(ctx, real);
}

VGPU_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx) {
  VGPU_REAL_OR_RETURN(real, cuCtxDestroy_v2);
  return destroy_context(ctx, real);
}

VGPU_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuDevicePrimaryCtxRetain);
  return retain_primary(pctx, dev, [&] { return real(pctx, dev); });
}

VGPU_EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuDevicePrimaryCtxRelease);
  return release_primary(dev, [&] { return real(dev); });
}

VGPU_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuDevicePrimaryCtxRelease_v2);
  return release_primary(dev, [&] { return real(dev); });
}

VGPU_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuDevicePrimaryCtxReset);
  return release_primary(dev, [&] { return real(dev); });
}

VGPU_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuDevicePrimaryCtxReset_v2);
  return release_primary(dev, [&] { return real(dev); });
}
