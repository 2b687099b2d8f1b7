// Exported wrappers: contexts, charged VGPU_CONTEXT_OVERHEAD each (a real
// context takes device memory for its local memory, printf buffer and heap).
// A created context is charged from cuCtxCreate to cuCtxDestroy; a device's
// primary context from its first retain until a release or reset leaves it
// inactive (asked of the driver with cuDevicePrimaryCtxGetState).
//
// Teardown: when the driver destroys a context (cuCtxDestroy, a primary
// reset, the release that drops the primary's retain count to 0) it frees
// everything allocated in it, so the hook returns every charge recorded as
// owned by that context (HookCore::release_context) and the launch gate
// forgets it before the real call.
#include <unistd.h>

#include <mutex>

#include "charging.h"
#include "launch_gate.h"
#include "real_driver.h"

namespace vgpu::hook {
namespace {

using PrimaryGetState = CUresult (*)(CUdevice, unsigned int*, int*);

// What the hook knows of a device's primary context. The driver keeps a
// retain count and destroys the context (with everything allocated in it)
// when a release brings the count to 0, or on a reset; `refs` mirrors that
// count for retains made through the hook, and the driver's own
// cuDevicePrimaryCtxGetState decides when it can be asked.
struct PrimaryState {
  std::mutex mu;
  bool charged = false;  // the context overhead is held
  int slot = -1;
  int refs = 0;
  uint64_t handle = 0;  // the CUcontext the last retain returned
  pid_t pid = 0;        // state from before fork() does not exist in the child
  void adopt_process() {
    if (pid == getpid()) return;
    charged = false;
    refs = 0;
    handle = 0;
    pid = getpid();
  }
};
PrimaryState g_primary[kMaxDevices];

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
CUresult retain_primary(CUcontext* pctx, CUdevice dev, Call call) {
  if (!pctx || dev < 0 || dev >= kMaxDevices) return call();
  HookCore& core = HookCore::get();
  uint64_t bytes = core.config().context_overhead;
  PrimaryState& p = g_primary[dev];
  std::lock_guard<std::mutex> g(p.mu);
  p.adopt_process();
  int slot = core.devices().slot_of_ordinal(dev);
  bool charge = bytes != 0 && !p.charged;
  CUresult r = charge ? charged_call(slot, bytes, "cuDevicePrimaryCtxRetain", call) : call();
  if (r != CUDA_SUCCESS) return r;
  if (charge) {
    p.charged = true;
    p.slot = slot;
  }
  ++p.refs;
  p.handle = reinterpret_cast<uint64_t>(*pctx);
  gate_note_context(*pctx, slot);
  return r;
}

// Everything the primary context of `p` held goes back to the quota.
void primary_torn_down(PrimaryState& p) {
  HookCore& core = HookCore::get();
  if (p.handle) core.release_context(p.handle);
  if (p.charged) core.uncharge(p.slot, core.config().context_overhead);
  p.charged = false;
  p.refs = 0;
  p.handle = 0;
}

// A release (`reset` false) or reset of the primary context of `dev`. The
// gate forgets the context before the driver destroys it (its events must
// not be used afterwards) and learns it again if it survived.
template <class Call>
CUresult release_primary(CUdevice dev, bool reset, Call call) {
  if (dev < 0 || dev >= kMaxDevices) return call();
  PrimaryState& p = g_primary[dev];
  std::lock_guard<std::mutex> g(p.mu);
  p.adopt_process();
  bool expect_gone = reset || p.refs <= 1;
  int gate_slot = expect_gone && p.handle ? gate_forget_context(reinterpret_cast<void*>(p.handle)) : -1;
  CUresult r = call();
  static auto get_state = reinterpret_cast<PrimaryGetState>(real_cuda_symbol("cuDevicePrimaryCtxGetState"));
  bool gone = false;
  if (r == CUDA_SUCCESS) {
    if (!reset && p.refs > 0) --p.refs;
    unsigned flags = 0;
    int active = 1;
    // The driver's word is final; without it the hook's own count decides.
    if (get_state && get_state(dev, &flags, &active) == CUDA_SUCCESS) gone = !active;
    else gone = reset || p.refs == 0;
  }
  if (gone) {
    if (gate_slot < 0 && p.handle) gate_forget_context(reinterpret_cast<void*>(p.handle));
    primary_torn_down(p);
  } else if (gate_slot >= 0) {
    gate_note_context(reinterpret_cast<void*>(p.handle), gate_slot);
  }
  return r;
}

CUresult destroy_context(CUcontext ctx, CUresult (*real)(CUcontext)) {
  HookCore& core = HookCore::get();
  int gate_slot = gate_forget_context(ctx);
  CUresult r = uncharged_call(core.contexts(), reinterpret_cast<uint64_t>(ctx), [&] { return real(ctx); });
  if (r == CUDA_SUCCESS) core.release_context(reinterpret_cast<uint64_t>(ctx));
  else if (gate_slot >= 0) gate_note_context(ctx, gate_slot);
  return r;
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
  return release_primary(dev, false, [&] { return real(dev); });
}

VGPU_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuDevicePrimaryCtxRelease_v2);
  return release_primary(dev, false, [&] { return real(dev); });
}

VGPU_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuDevicePrimaryCtxReset);
  return release_primary(dev, true, [&] { return real(dev); });
}

VGPU_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
  VGPU_REAL_OR_RETURN(real, cuDevicePrimaryCtxReset_v2);
  return release_primary(dev, true, [&] { return real(dev); });
}
