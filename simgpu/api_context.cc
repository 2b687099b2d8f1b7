// Contexts: primary context retain/release/reset/state, cuCtxCreate v2/v3/v4,
// destroy, the per-thread context stack, synchronize and queries.
#include "capture.h"
#include "event.h"

using namespace simgpu;

namespace {

constexpr unsigned kSchedMask = CU_CTX_SCHED_MASK;
constexpr unsigned kValidFlags = CU_CTX_FLAGS_MASK;

CUresult create_and_push(unsigned flags, CUdevice dev, CUcontext* pctx) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_device(dev)) return r;
  if ((flags & ~kValidFlags) != 0 || (flags & kSchedMask) == (CU_CTX_SCHED_SPIN | CU_CTX_SCHED_YIELD))
    return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  if (CUresult r = Driver::get().create_context(phys(dev), flags, false, &c)) return r;
  tls_push(c);
  *pctx = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}

Driver::Primary* primary_of(CUdevice dev) { return &Driver::get().primary[phys(dev)]; }

}  // namespace

SIMGPU_EXPORT CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  return create_and_push(flags, dev, pctx);
}

SIMGPU_EXPORT CUresult cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* params, int numParams,
                                      unsigned int flags, CUdevice dev) {
  if (numParams < 0 || (numParams > 0 && !params)) return CUDA_ERROR_INVALID_VALUE;
  return create_and_push(flags, dev, pctx);
}

SIMGPU_EXPORT CUresult cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* params, unsigned int flags,
                                      CUdevice dev) {
  if (params && params->numExecAffinityParams < 0) return CUDA_ERROR_INVALID_VALUE;
  return create_and_push(flags, dev, pctx);
}

SIMGPU_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx) {
  Context* c = nullptr;
  if (CUresult r = check_context(ctx, &c)) return r;
  if (c->primary) return CUDA_ERROR_INVALID_CONTEXT;  // primary contexts are released, not destroyed
  if (tls_current() == c) tls_pop();
  Driver::get().destroy_context(c);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx) {
  Context* c = nullptr;
  if (CUresult r = check_context(ctx, &c)) return r;
  tls_push(c);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext* pctx) {
  if (CUresult r = require_init()) return r;
  if (!tls_current()) return CUDA_ERROR_INVALID_CONTEXT;
  Context* c = tls_pop();
  if (pctx) *pctx = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx) {
  if (CUresult r = require_init()) return r;
  Context* c = nullptr;
  if (ctx && check_context(ctx, &c) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_CONTEXT;
  tls_set_current(c);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxGetCurrent(CUcontext* pctx) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = require_init()) return r;
  *pctx = reinterpret_cast<CUcontext>(tls_current());
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxGetDevice(CUdevice* dev) {
  if (!dev) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  *dev = ordinal(c->device);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxGetFlags(unsigned int* flags) {
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  *flags = c->flags;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxSetFlags(unsigned int flags) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if ((flags & ~kValidFlags) != 0) return CUDA_ERROR_INVALID_VALUE;
  c->flags = flags;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxGetId(CUcontext ctx, unsigned long long* id) {
  if (!id) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  CUresult r = ctx ? check_context(ctx, &c) : current_context(&c);
  if (r) return r;
  *id = c->id;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int* version) {
  if (!version) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  CUresult r = ctx ? check_context(ctx, &c) : current_context(&c);
  if (r) return r;
  *version = 3020;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxSynchronize() {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (CUresult r = check_context_sync(c)) return r;  // refused during stream capture
  synchronize_context(c);
  run_sync_hooks(c);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxSynchronize_v2(CUcontext ctx) {
  Context* c = nullptr;
  CUresult r = ctx ? check_context(ctx, &c) : current_context(&c);
  if (r) return r;
  if (CUresult r = check_context_sync(c)) return r;  // refused during stream capture
  synchronize_context(c);
  run_sync_hooks(c);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxGetStreamPriorityRange(int* least, int* greatest) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (least) *least = 0;
  if (greatest) *greatest = -5;
  return CUDA_SUCCESS;
}

// --- primary contexts ---------------------------------------------------

SIMGPU_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_device(dev)) return r;
  Driver::Primary* p = primary_of(dev);
  std::lock_guard<std::mutex> g(p->mu);
  if (!p->ctx) {
    Context* c = nullptr;
    if (CUresult r = Driver::get().create_context(phys(dev), p->flags, true, &c)) return r;
    p->ctx = c;
  }
  ++p->refs;
  *pctx = reinterpret_cast<CUcontext>(p->ctx);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  if (CUresult r = check_device(dev)) return r;
  Driver::Primary* p = primary_of(dev);
  Context* dead = nullptr;
  {
    std::lock_guard<std::mutex> g(p->mu);
    if (p->refs == 0) return CUDA_ERROR_INVALID_CONTEXT;
    if (--p->refs == 0) {
      dead = p->ctx;
      p->ctx = nullptr;
    }
  }
  if (dead) Driver::get().destroy_context(dead);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
  if (CUresult r = check_device(dev)) return r;
  Driver::Primary* p = primary_of(dev);
  Context* dead = nullptr;
  {
    std::lock_guard<std::mutex> g(p->mu);
    dead = p->ctx;
    p->ctx = nullptr;
    p->refs = 0;
    p->flags = 0;
  }
  if (dead) Driver::get().destroy_context(dead);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
  if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_device(dev)) return r;
  Driver::Primary* p = primary_of(dev);
  std::lock_guard<std::mutex> g(p->mu);
  *flags = p->flags;
  *active = p->ctx != nullptr;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags) {
  if (CUresult r = check_device(dev)) return r;
  if ((flags & ~kValidFlags) != 0) return CUDA_ERROR_INVALID_VALUE;
  Driver::Primary* p = primary_of(dev);
  std::lock_guard<std::mutex> g(p->mu);
  p->flags = flags;
  if (p->ctx) p->ctx->flags = flags;
  return CUDA_SUCCESS;
}

// Legacy (pre-_v2) names with identical semantics.
SIMGPU_EXPORT CUresult cuCtxCreate(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  return cuCtxCreate_v2(pctx, flags, dev);
}
SIMGPU_EXPORT CUresult cuCtxDestroy(CUcontext ctx) { return cuCtxDestroy_v2(ctx); }
SIMGPU_EXPORT CUresult cuCtxPushCurrent(CUcontext ctx) { return cuCtxPushCurrent_v2(ctx); }
SIMGPU_EXPORT CUresult cuCtxPopCurrent(CUcontext* pctx) { return cuCtxPopCurrent_v2(pctx); }
SIMGPU_EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return cuDevicePrimaryCtxRelease_v2(dev); }
SIMGPU_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev) { return cuDevicePrimaryCtxReset_v2(dev); }
SIMGPU_EXPORT CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags) {
  return cuDevicePrimaryCtxSetFlags_v2(dev, flags);
}
