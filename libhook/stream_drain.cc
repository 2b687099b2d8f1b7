#include "stream_drain.h"

#include <algorithm>
#include <mutex>
#include <new>
#include <unordered_map>

#include "launch_gate.h"
#include "real_driver.h"

namespace vgpu::hook {
namespace {

// Never destroyed: the daemon client's thread may drain while the process exits.
std::mutex& g_mu = *new std::mutex();
std::vector<KnownStream>& g_streams = *new std::vector<KnownStream>();
// The drain's own events of each context, reused: an event the drain recorded
// may have become a node of the application's graph (a capture that began
// between the status query and the record), so it is never destroyed while
// the context lives; the context's destruction frees it.
std::unordered_map<void*, std::vector<CUevent>>& g_spare = *new std::unordered_map<void*, std::vector<CUevent>>();

template <class F>
F real_fn(const char* name) {
  return reinterpret_cast<F>(real_cuda_symbol(name));
}

struct Driver {
  CUresult (*is_capturing)(CUstream, CUstreamCaptureStatus*) = real_fn<decltype(is_capturing)>("cuStreamIsCapturing");
  CUresult (*create)(CUevent*, unsigned) = real_fn<decltype(create)>("cuEventCreate");
  CUresult (*record)(CUevent, CUstream) = real_fn<decltype(record)>("cuEventRecord");
  CUresult (*sync)(CUevent) = real_fn<decltype(sync)>("cuEventSynchronize");
  CUresult (*push)(CUcontext) = real_fn<decltype(push)>("cuCtxPushCurrent_v2");
  CUresult (*pop)(CUcontext*) = real_fn<decltype(pop)>("cuCtxPopCurrent_v2");
  bool usable() const { return is_capturing && create && record && sync && push && pop; }
};

const Driver& driver() {
  static const Driver d;
  return d;
}

// True if `s` has no capture in progress (and may take an event); the legacy
// stream answers IMPLICIT while a blocking stream of the context captures.
bool not_capturing(CUstream s) {
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  return driver().is_capturing(s, &st) == CUDA_SUCCESS && st == CU_STREAM_CAPTURE_STATUS_NONE;
}

// Records one of ctx's spare events (or a new one) on `s`. Holds g_mu.
void record_on(void* ctx, CUstream s, std::vector<CUevent>* recorded) {
  std::vector<CUevent>& spare = g_spare[ctx];
  CUevent e = nullptr;
  if (!spare.empty()) {
    e = spare.back();
    spare.pop_back();
  } else if (driver().create(&e, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) {
    return;
  }
  if (driver().record(e, s) == CUDA_SUCCESS) recorded->push_back(e);
  else spare.push_back(e);
}

// Records the drain's events in ctx (current on this thread).
std::vector<CUevent> record_drain_events(void* ctx) {
  std::vector<CUevent> recorded;
  std::lock_guard<std::mutex> g(g_mu);
  // One event on the legacy stream covers every blocking stream, including
  // other threads' per-thread default streams the hook cannot name.
  bool legacy = not_capturing(CU_STREAM_LEGACY);
  if (legacy) record_on(ctx, CU_STREAM_LEGACY, &recorded);
  for (const KnownStream& k : g_streams)
    if (k.ctx == ctx && (k.non_blocking || !legacy) && not_capturing(k.stream)) record_on(ctx, k.stream, &recorded);
  return recorded;
}

}  // namespace

void streams_note_created(CUstream s, unsigned flags) {
  static auto get_ctx = real_fn<CUresult (*)(CUstream, CUcontext*)>("cuStreamGetCtx");
  static auto current = real_fn<CUresult (*)(CUcontext*)>("cuCtxGetCurrent");
  CUcontext ctx = nullptr;
  if (!s || ((!get_ctx || get_ctx(s, &ctx) != CUDA_SUCCESS) && (!current || current(&ctx) != CUDA_SUCCESS)) || !ctx)
    return;
  streams_note_again({s, ctx, (flags & CU_STREAM_NON_BLOCKING) != 0});
}

void streams_note_again(const KnownStream& k) {
  std::lock_guard<std::mutex> g(g_mu);
  // A handle the driver hands out again replaces whatever was left under it.
  std::erase_if(g_streams, [&](const KnownStream& o) { return o.stream == k.stream; });
  g_streams.push_back(k);
}

bool streams_forget(CUstream s, KnownStream* was) {
  std::lock_guard<std::mutex> g(g_mu);
  auto it = std::find_if(g_streams.begin(), g_streams.end(), [&](const KnownStream& k) { return k.stream == s; });
  if (it == g_streams.end()) return false;
  *was = *it;
  g_streams.erase(it);
  return true;
}

void streams_forget_context(void* ctx) {
  std::lock_guard<std::mutex> g(g_mu);
  std::erase_if(g_streams, [&](const KnownStream& k) { return k.ctx == ctx; });
  g_spare.erase(ctx);
}

void streams_reset_after_fork() {
  new (&g_mu) std::mutex();
  g_streams.clear();
  g_spare.clear();
}

void drain_context_streams(void* ctx, const std::vector<CUevent>& also) {
  const Driver& d = driver();
  if (!d.usable()) return;
  RelaxedCaptureMode relaxed;  // the syncs below must never restrict an application's capture
  if (d.push(static_cast<CUcontext>(ctx)) != CUDA_SUCCESS) return;
  std::vector<CUevent> mine = record_drain_events(ctx);
  // An event last recorded inside a capture answers CAPTURED_EVENT at once:
  // it stands for no queued work.
  for (CUevent e : mine) d.sync(e);
  for (CUevent e : also) d.sync(e);
  {
    std::lock_guard<std::mutex> g(g_mu);
    auto it = g_spare.find(ctx);
    if (it != g_spare.end()) it->second.insert(it->second.end(), mine.begin(), mine.end());
  }
  CUcontext popped;
  d.pop(&popped);
}

bool record_after_recent_work(void* ctx, CUstream s, bool per_thread, CUevent e) {
  const Driver& d = driver();
  if (!d.usable() || !e) return false;
  RelaxedCaptureMode relaxed;
  if (d.push(static_cast<CUcontext>(ctx)) != CUDA_SUCCESS) return false;
  bool ok = false;
  {
    std::lock_guard<std::mutex> g(g_mu);  // a known stream is not destroyed meanwhile
    CUstream target = CU_STREAM_LEGACY;
    bool default_stream = s == nullptr || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD;
    if (!default_stream) {
      auto it = std::find_if(g_streams.begin(), g_streams.end(),
                             [&](const KnownStream& k) { return k.stream == s && k.ctx == ctx; });
      if (it == g_streams.end()) target = nullptr;  // unknown (or another context's): never touched
      else if (it->non_blocking) target = s;
    }
    (void)per_thread;  // the per-thread default stream is blocking: the legacy stream follows it
    if (target && not_capturing(target)) ok = d.record(e, target) == CUDA_SUCCESS;
  }
  CUcontext popped;
  d.pop(&popped);
  return ok;
}

}  // namespace vgpu::hook
