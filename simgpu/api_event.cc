// Events: create, record (with flags), query, synchronize, elapsed time, destroy.
#include "capture.h"
#include "event.h"

namespace simgpu {

HandleTable<Event> g_events;

namespace {
std::mutex g_sync_mu;
std::vector<std::function<void(Context*)>> g_sync_hooks;
}  // namespace

void add_sync_hook(std::function<void(Context*)> fn) {
  std::lock_guard<std::mutex> g(g_sync_mu);
  g_sync_hooks.push_back(std::move(fn));
}

void run_sync_hooks(Context* ctx) {
  std::vector<std::function<void(Context*)>> hooks;
  {
    std::lock_guard<std::mutex> g(g_sync_mu);
    hooks = g_sync_hooks;
  }
  for (auto& h : hooks) h(ctx);
}

}  // namespace simgpu

using namespace simgpu;

namespace {

constexpr unsigned kEventFlags =
    CU_EVENT_DEFAULT | CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;

CUresult check_event(CUevent h, Event** out) {
  if (CUresult r = require_init()) return r;
  auto* e = reinterpret_cast<Event*>(h);
  if (!e || !g_events.contains(e)) return CUDA_ERROR_INVALID_HANDLE;
  *out = e;
  return CUDA_SUCCESS;
}

CUresult record(CUevent h, CUstream hs, bool per_thread) {
  Event* e = nullptr;
  if (CUresult r = check_event(h, &e)) return r;
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(hs, per_thread, &s)) return r;
  if (s->ctx != e->ctx) return CUDA_ERROR_INVALID_HANDLE;
  auto rec = std::make_shared<EventRecord>();
  rec->stream = s;
  CUresult captured = CUDA_SUCCESS;
  if (capture_event_record(s, rec.get(), &captured)) {
    if (captured) return captured;
    std::lock_guard<std::mutex> g(e->mu);
    e->last = rec;
    return CUDA_SUCCESS;
  }
  StreamOp op;
  op.work = [rec] { rec->time_ns.store(monotonic_ns(), std::memory_order_release); };
  std::lock_guard<std::mutex> g(e->mu);  // record order == enqueue order
  rec->seq = enqueue_ordered(s, std::move(op));
  e->last = rec;
  return CUDA_SUCCESS;
}

CUresult elapsed(float* ms, CUevent hstart, CUevent hend) {
  if (!ms) return CUDA_ERROR_INVALID_VALUE;
  Event *a = nullptr, *b = nullptr;
  if (CUresult r = check_event(hstart, &a)) return r;
  if (CUresult r = check_event(hend, &b)) return r;
  if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING) return CUDA_ERROR_INVALID_HANDLE;
  auto ra = a->latest(), rb = b->latest();
  if (!ra || !rb) return CUDA_ERROR_INVALID_HANDLE;
  if (!ra->stream->done(ra->seq) || !rb->stream->done(rb->seq)) return CUDA_ERROR_NOT_READY;
  double d = static_cast<double>(static_cast<int64_t>(rb->time_ns.load() - ra->time_ns.load()));
  *ms = static_cast<float>(d / 1e6);
  return CUDA_SUCCESS;
}

}  // namespace

SIMGPU_EXPORT CUresult cuEventCreate(CUevent* phEvent, unsigned int flags) {
  if (!phEvent) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if ((flags & ~kEventFlags) != 0) return CUDA_ERROR_INVALID_VALUE;
  if ((flags & CU_EVENT_INTERPROCESS) && !(flags & CU_EVENT_DISABLE_TIMING)) return CUDA_ERROR_INVALID_VALUE;
  auto* e = new Event();
  e->flags = flags;
  e->ctx = c;
  g_events.add(e);
  *phEvent = reinterpret_cast<CUevent>(e);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuEventDestroy_v2(CUevent h) {
  Event* e = nullptr;
  if (CUresult r = check_event(h, &e)) return r;
  g_events.remove(e);
  return CUDA_SUCCESS;  // the object stays: queued waits may still reference its record
}

SIMGPU_EXPORT CUresult cuEventDestroy(CUevent h) { return cuEventDestroy_v2(h); }

SIMGPU_EXPORT CUresult cuEventRecord(CUevent h, CUstream s) { return record(h, s, false); }
SIMGPU_EXPORT CUresult cuEventRecord_ptsz(CUevent h, CUstream s) { return record(h, s, true); }

SIMGPU_EXPORT CUresult cuEventRecordWithFlags(CUevent h, CUstream s, unsigned int flags) {
  if (flags & ~static_cast<unsigned>(CU_EVENT_RECORD_EXTERNAL)) return CUDA_ERROR_INVALID_VALUE;
  return record(h, s, false);
}

SIMGPU_EXPORT CUresult cuEventRecordWithFlags_ptsz(CUevent h, CUstream s, unsigned int flags) {
  if (flags & ~static_cast<unsigned>(CU_EVENT_RECORD_EXTERNAL)) return CUDA_ERROR_INVALID_VALUE;
  return record(h, s, true);
}

SIMGPU_EXPORT CUresult cuEventQuery(CUevent h) {
  Event* e = nullptr;
  if (CUresult r = check_event(h, &e)) return r;
  auto rec = e->latest();
  if (CUresult r = check_event_sync(rec)) return r;
  return (!rec || rec->stream->done(rec->seq)) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

SIMGPU_EXPORT CUresult cuEventSynchronize(CUevent h) {
  Event* e = nullptr;
  if (CUresult r = check_event(h, &e)) return r;
  auto rec = e->latest();
  if (CUresult r = check_event_sync(rec)) return r;
  if (rec) rec->stream->wait_for(rec->seq);
  run_sync_hooks(e->ctx);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuEventElapsedTime(float* ms, CUevent a, CUevent b) { return elapsed(ms, a, b); }
SIMGPU_EXPORT CUresult cuEventElapsedTime_v2(float* ms, CUevent a, CUevent b) { return elapsed(ms, a, b); }
