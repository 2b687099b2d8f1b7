// Streams: create (with priority), destroy, synchronize, query, wait on an
// event, and queries, each with its per-thread-default-stream variant.
#include "capture.h"
#include "event.h"

using namespace simgpu;

namespace {

CUresult create(CUstream* ph, unsigned flags, int priority) {
  if (!ph) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (flags & ~static_cast<unsigned>(CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
  // Priorities outside [greatest, least] = [-5, 0] are clamped, as documented.
  priority = priority < -5 ? -5 : (priority > 0 ? 0 : priority);
  auto s = make_stream(c, flags, priority);
  Driver::get().streams.add(s.get());
  *ph = reinterpret_cast<CUstream>(s.get());
  return CUDA_SUCCESS;
}

CUresult sync(CUstream h, bool per_thread) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  if (CUresult r = check_stream_sync(s)) return r;
  if (s->is_legacy_null) {
    synchronize_context(s->ctx);  // the NULL stream waits for all blocking streams
  } else {
    s->synchronize();
  }
  run_sync_hooks(s->ctx);
  return CUDA_SUCCESS;
}

CUresult query(CUstream h, bool per_thread) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  if (CUresult r = check_stream_sync(s)) return r;
  return s->idle() ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult wait_event(CUstream h, CUevent he, unsigned flags, bool per_thread) {
  if (flags & ~static_cast<unsigned>(CU_EVENT_WAIT_EXTERNAL)) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  auto* e = reinterpret_cast<Event*>(he);
  if (!g_events.contains(e)) return CUDA_ERROR_INVALID_HANDLE;
  auto rec = e->latest();
  CUresult captured = CUDA_SUCCESS;
  if (capture_wait_event(s, rec, flags, &captured)) return captured;
  if (!rec) return CUDA_SUCCESS;  // never recorded: nothing to wait for
  StreamOp op;
  op.deps.emplace_back(rec->stream, rec->seq);
  enqueue_ordered(s, std::move(op));
  return CUDA_SUCCESS;
}

CUresult destroy(CUstream h) {
  if (CUresult r = require_init()) return r;
  auto* raw = reinterpret_cast<Stream*>(h);
  if (!h || !Driver::get().streams.remove(raw)) return CUDA_ERROR_INVALID_HANDLE;
  std::shared_ptr<Stream> s = raw->shared_from_this();
  Context* c = s->ctx;
  {
    std::lock_guard<std::mutex> g(c->mu);
    auto& v = c->streams;
    for (auto it = v.begin(); it != v.end(); ++it)
      if (it->get() == raw) {
        v.erase(it);
        break;
      }
  }
  // As documented, work already queued still completes; the executor drains
  // and exits on its own.
  std::thread([s] { s->shutdown(); }).detach();
  return CUDA_SUCCESS;
}

template <class F>
CUresult with_stream(CUstream h, bool per_thread, F f) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  f(*s);
  return CUDA_SUCCESS;
}

}  // namespace

SIMGPU_EXPORT CUresult cuStreamCreate(CUstream* ph, unsigned int flags) { return create(ph, flags, 0); }
SIMGPU_EXPORT CUresult cuStreamCreateWithPriority(CUstream* ph, unsigned int flags, int priority) {
  return create(ph, flags, priority);
}
SIMGPU_EXPORT CUresult cuStreamDestroy_v2(CUstream h) { return destroy(h); }
SIMGPU_EXPORT CUresult cuStreamDestroy(CUstream h) { return destroy(h); }
SIMGPU_EXPORT CUresult cuStreamSynchronize(CUstream h) { return sync(h, false); }
SIMGPU_EXPORT CUresult cuStreamSynchronize_ptsz(CUstream h) { return sync(h, true); }
SIMGPU_EXPORT CUresult cuStreamQuery(CUstream h) { return query(h, false); }
SIMGPU_EXPORT CUresult cuStreamQuery_ptsz(CUstream h) { return query(h, true); }
SIMGPU_EXPORT CUresult cuStreamWaitEvent(CUstream h, CUevent e, unsigned int flags) {
  return wait_event(h, e, flags, false);
}
SIMGPU_EXPORT CUresult cuStreamWaitEvent_ptsz(CUstream h, CUevent e, unsigned int flags) {
  return wait_event(h, e, flags, true);
}

SIMGPU_EXPORT CUresult cuStreamGetFlags(CUstream h, unsigned int* flags) {
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  return with_stream(h, false, [&](Stream& s) { *flags = s.flags; });
}
SIMGPU_EXPORT CUresult cuStreamGetFlags_ptsz(CUstream h, unsigned int* flags) {
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  return with_stream(h, true, [&](Stream& s) { *flags = s.flags; });
}
SIMGPU_EXPORT CUresult cuStreamGetPriority(CUstream h, int* priority) {
  if (!priority) return CUDA_ERROR_INVALID_VALUE;
  return with_stream(h, false, [&](Stream& s) { *priority = s.priority; });
}
SIMGPU_EXPORT CUresult cuStreamGetPriority_ptsz(CUstream h, int* priority) {
  if (!priority) return CUDA_ERROR_INVALID_VALUE;
  return with_stream(h, true, [&](Stream& s) { *priority = s.priority; });
}
SIMGPU_EXPORT CUresult cuStreamGetCtx(CUstream h, CUcontext* pctx) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  return with_stream(h, false, [&](Stream& s) { *pctx = reinterpret_cast<CUcontext>(s.ctx); });
}
SIMGPU_EXPORT CUresult cuStreamGetCtx_ptsz(CUstream h, CUcontext* pctx) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  return with_stream(h, true, [&](Stream& s) { *pctx = reinterpret_cast<CUcontext>(s.ctx); });
}
SIMGPU_EXPORT CUresult cuStreamGetId(CUstream h, unsigned long long* id) {
  if (!id) return CUDA_ERROR_INVALID_VALUE;
  return with_stream(h, false, [&](Stream& s) { *id = s.id; });
}
SIMGPU_EXPORT CUresult cuStreamGetId_ptsz(CUstream h, unsigned long long* id) {
  if (!id) return CUDA_ERROR_INVALID_VALUE;
  return with_stream(h, true, [&](Stream& s) { *id = s.id; });
}
SIMGPU_EXPORT CUresult cuStreamGetDevice(CUstream h, CUdevice* dev) {
  if (!dev) return CUDA_ERROR_INVALID_VALUE;
  return with_stream(h, false, [&](Stream& s) { *dev = ordinal(s.ctx->device); });
}
SIMGPU_EXPORT CUresult cuStreamGetDevice_ptsz(CUstream h, CUdevice* dev) {
  if (!dev) return CUDA_ERROR_INVALID_VALUE;
  return with_stream(h, true, [&](Stream& s) { *dev = ordinal(s.ctx->device); });
}
