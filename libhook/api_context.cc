// Exported wrappers: contexts, each charged the device memory the driver
// took to create it (its local memory, printf FIFO, heap, internal state):
// measured as the change of the process's own NVML use across the real call
// (driver_memory.h), never less than the floor (HookCore::context_floor:
// vgpud's enforcement.context_overhead, or VGPU_CONTEXT_OVERHEAD standalone).
// The device's last measured overhead is reserved before the call, so a
// context that cannot fit is normally refused before it exists; if the
// measurement turns out larger and the rest does not fit, the new context is
// destroyed again and the call fails with CUDA_ERROR_OUT_OF_MEMORY.
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

#include <algorithm>
#include <mutex>

#include "charging.h"
#include "driver_memory.h"
#include "log.h"
#include "vgpu/units.h"
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
  uint64_t bytes = 0;    // ... that many bytes
  int slot = -1;
  int refs = 0;
  uint64_t handle = 0;  // the CUcontext the last retain returned
  pid_t pid = 0;        // state from before fork() does not exist in the child
  void adopt_process() {
    if (pid == getpid()) return;
    charged = false;
    bytes = 0;
    refs = 0;
    handle = 0;
    pid = getpid();
  }
};
PrimaryState g_primary[kMaxDevices];

using CtxDestroy = CUresult (*)(CUcontext);
using PrimaryRelease = CUresult (*)(CUdevice);

// What the driver took for the last context created on each slot (bytes).
std::atomic<uint64_t> g_last_overhead[kMaxDevices];

// Creates a context through `call`, charging max(floor, what the driver
// took); `undo` destroys it again when that charge is refused. *charged:
// the bytes held on success.
template <class Call, class Undo>
CUresult charged_context(int slot, const char* api, Call call, Undo undo, uint64_t* charged) {
  HookCore& core = HookCore::get();
  uint64_t floor = core.context_floor();
  bool known_slot = slot >= 0 && slot < kMaxDevices;
  uint64_t guess = std::max(floor, known_slot ? g_last_overhead[slot].load(std::memory_order_relaxed) : 0);
  // Nothing to reserve is never refused, even for a tenant whose usage is
  // above a lowered quota (its running processes keep what they hold).
  if (guess && !core.charge(slot, guess, api)) return CUDA_ERROR_OUT_OF_MEMORY;
  uint64_t held = core.own_charge(slot);
  Measured m = measure_driver_call(slot, held > guess ? held - guess : 0, call);
  if (m.result != CUDA_SUCCESS) {
    if (guess) core.uncharge(slot, guess);
    return m.result;
  }
  uint64_t took = m.known && m.delta > 0 ? static_cast<uint64_t>(m.delta) : 0;
  if (m.known && known_slot) g_last_overhead[slot].store(took, std::memory_order_relaxed);
  uint64_t want = std::max(floor, took);
  if (want > guess && !core.charge(slot, want - guess, api)) {
    undo();
    if (guess) core.uncharge(slot, guess);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (want < guess) core.uncharge(slot, guess - want);
  VGPU_LOG(LogLevel::kDebug, "%s on GPU %d: the driver took %s, %s charged", api, slot, format_bytes(took).c_str(),
           format_bytes(want).c_str());
  *charged = want;
  return CUDA_SUCCESS;
}

template <class Call>
CUresult create_context(CUcontext* pctx, CUdevice dev, Call call) {
  if (!pctx) return call();
  HookCore& core = HookCore::get();
  int slot = core.devices().slot_of_ordinal(dev);
  static auto destroy = reinterpret_cast<CtxDestroy>(real_cuda_symbol("cuCtxDestroy_v2"));
  uint64_t bytes = 0;
  CUresult r = charged_context(slot, "cuCtxCreate", call, [&] { if (destroy) destroy(*pctx); }, &bytes);
  if (r != CUDA_SUCCESS) return r;
  if (bytes) core.contexts().add(reinterpret_cast<uint64_t>(*pctx), {slot, bytes});
  gate_note_context(*pctx, slot);
  return r;
}

template <class Call>
CUresult retain_primary(CUcontext* pctx, CUdevice dev, Call call) {
  if (!pctx || dev < 0 || dev >= kMaxDevices) return call();
  HookCore& core = HookCore::get();
  PrimaryState& p = g_primary[dev];
  std::lock_guard<std::mutex> g(p.mu);
  p.adopt_process();
  int slot = core.devices().slot_of_ordinal(dev);
  static auto release = reinterpret_cast<PrimaryRelease>(real_cuda_symbol("cuDevicePrimaryCtxRelease_v2"));
  uint64_t bytes = 0;
  CUresult r = p.charged ? call()
                         : charged_context(slot, "cuDevicePrimaryCtxRetain", call,
                                           [&] { if (release) release(dev); }, &bytes);
  if (r != CUDA_SUCCESS) return r;
  if (!p.charged) {
    p.charged = true;
    p.bytes = bytes;
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
  if (p.charged) core.uncharge(p.slot, p.bytes);
  p.charged = false;
  p.bytes = 0;
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
