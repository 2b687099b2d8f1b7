#include "launch_gate.h"
#include "log.h"

#include <time.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <unordered_map>
#include <mutex>
#include <thread>
#include <vector>

#include "daemon_client.h"
#include "hook_core.h"
#include "real_driver.h"
#include "stream_drain.h"

namespace vgpu::hook {

GateState g_gate;

namespace {

constexpr uint64_t kWaitSliceNs = 20'000'000;  // re-checks vgpud's presence this often
// A holder whose queued work has finished keeps the lease this long before it
// reports idle: a loop that synchronizes after each kernel launches again well
// within it, so it is not handed over once per synchronization (issue 11).
constexpr auto kIdleGrace = std::chrono::microseconds(300);
// How long the idle watcher waits for the event of launches made after its
// newest event before it records one itself (after the end of a burst).
constexpr auto kTailWait = std::chrono::milliseconds(1);

// Process-lifetime state, never destroyed: threads of the hook (the idle
// watcher, the daemon client) may use it while the process exits.
std::mutex& g_mu = *new std::mutex();
std::vector<std::pair<void*, int>>& g_contexts = *new std::vector<std::pair<void*, int>>();  // (CUcontext, slot)
uint64_t g_slots_mask = 0;
// Held by the hook's own threads (idle watcher, drain) while they use a
// context or its events outside g_mu/g_inflight_mu; gate_forget_context
// takes it once after dropping the context, so when it returns nothing of the
// hook touches that context again and the driver may destroy it.
std::mutex& g_use_mu = *new std::mutex();

// In-flight launches of each context while its lease is contended. Not every
// launch gets an event (each is one more op for the stream to run): one is
// recorded after every `batch` launches, and after the first launch made while
// the idle watcher thinks nothing is queued. `queued` + `uncovered` counts
// every launch not yet known complete, so the cap stays exact (an estimate
// from above: an event's launches count until the event is seen complete).
struct Pending {
  CUevent event;
  uint32_t covers;  // launches since the previous event
};
struct Inflight {
  std::deque<Pending> pending;
  std::vector<CUevent> spare;
  uint32_t queued = 0;     // launches covered by `pending`
  uint32_t uncovered = 0;  // launches after the newest event
  CUstream last_stream = nullptr;  // of the newest launch
  bool last_per_thread = false;
};
std::mutex& g_inflight_mu = *new std::mutex();
std::unordered_map<void*, Inflight>& g_inflight = *new std::unordered_map<void*, Inflight>();
std::atomic<uint32_t> g_cap{16};
// The context the calling thread's last throttled launch was checked in (saves
// gate_after_launch asking the driver again).
thread_local void* t_throttle_ctx = nullptr;

// Idle reporting: a thread that waits (without spinning) for the newest
// throttled launch of every context to finish; if no launch came meanwhile,
// the process has nothing queued and says so, so vgpud can hand a contended
// lease on at once instead of after the idle check.
// Never destroyed: the watcher thread may still wait on them while the
// process exits (a destroyed condition variable with a waiter hangs exit).
std::mutex& g_watch_mu = *new std::mutex();
std::condition_variable& g_watch_cv = *new std::condition_variable();
std::atomic<uint64_t> g_launch_gen{0};
// mono_ns() when a launch last began to wait for the lease (the idle
// watcher's measure of a pause that ended in a handover).
std::atomic<uint64_t> g_lease_wait_began{0};
std::atomic<uint64_t> g_record_gen{0};  // throttle events recorded
std::atomic<bool> g_watcher_started{false};
std::atomic<bool> g_watcher_parked{false};   // waiting for launches: nothing queued as far as it knows
std::atomic<bool> g_watcher_waiting{false};  // in its grace or tail wait: wants to hear of launches
void idle_watcher();

template <class F>
F real_fn(const char* name) {
  return reinterpret_cast<F>(real_cuda_symbol(name));
}

CUcontext current_context() {
  static auto get = real_fn<CUresult (*)(CUcontext*)>("cuCtxGetCurrent");
  CUcontext c = nullptr;
  if (!get || get(&c) != CUDA_SUCCESS) return nullptr;
  return c;
}

uint32_t batch_size() { return std::max<uint32_t>(1, g_cap.load(std::memory_order_relaxed) / 4); }

// Before a contended launch: at the cap, waits until at most half the cap is
// unfinished (so a deep queue of short kernels costs this thread one sleep
// per cap/2 launches, not one per event batch), then launches. Below the cap
// this is a lock and a compare: no driver call.
void throttle_before_launch() {
  static auto query = real_fn<CUresult (*)(CUevent)>("cuEventQuery");
  static auto sync = real_fn<CUresult (*)(CUevent)>("cuEventSynchronize");
  CUcontext ctx = current_context();
  t_throttle_ctx = ctx;
  if (!ctx || !query || !sync) return;
  std::unique_lock<std::mutex> l(g_inflight_mu);
  const uint32_t cap = g_cap.load(std::memory_order_relaxed);
  Inflight* f = &g_inflight[ctx];
  if (f->queued + f->uncovered < cap) return;
  l.unlock();
  RelaxedCaptureMode relaxed;  // the application's thread may be in GLOBAL mode
  l.lock();
  f = &g_inflight[ctx];
  while (!f->pending.empty() && query(f->pending.front().event) != CUDA_ERROR_NOT_READY) {
    f->queued -= std::min(f->queued, f->pending.front().covers);
    f->spare.push_back(f->pending.front().event);
    f->pending.pop_front();
  }
  const uint32_t resume = cap / 2;
  while (f->queued + f->uncovered > resume && !f->pending.empty()) {
    Pending oldest = f->pending.front();
    f->pending.pop_front();
    f->queued -= std::min(f->queued, oldest.covers);
    l.unlock();
    sync(oldest.event);
    l.lock();
    f = &g_inflight[ctx];
    f->spare.push_back(oldest.event);
  }
}

uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Points the fast path at the lease of the process's GPU if it has exactly one.
void refresh_locked() {
  DaemonClient& c = DaemonClient::get();
  LeaseWord* w = nullptr;
  std::atomic<uint32_t>* t = nullptr;
  // Closed fail mode with vgpud gone: every launch takes the slow path, which
  // waits for vgpud (a granted bit left in the old memory must not count).
  bool usable = c.connected() || !c.fail_closed();
  if (usable && std::popcount(g_slots_mask) == 1) {
    int slot = std::countr_zero(g_slots_mask);
    w = c.lease_word(slot);
    t = c.touched_word(slot);
  }
  g_gate.single.store(nullptr, std::memory_order_relaxed);
  g_gate.touched.store(t, std::memory_order_relaxed);
  g_gate.single.store(t ? w : nullptr, std::memory_order_release);
}

}  // namespace

bool gate_stream_capturing(CUstream stream, bool per_thread) {
  using IsCapturing = CUresult (*)(CUstream, CUstreamCaptureStatus*);
  static auto is = real_fn<IsCapturing>("cuStreamIsCapturing");
  static auto is_pt = real_fn<IsCapturing>("cuStreamIsCapturing_ptsz");
  auto fn = per_thread && is_pt ? is_pt : is;
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  return fn && fn(stream, &st) == CUDA_SUCCESS && st == CU_STREAM_CAPTURE_STATUS_ACTIVE;
}

RelaxedCaptureMode::RelaxedCaptureMode() {
  using Exchange = CUresult (*)(CUstreamCaptureMode*);
  static auto exchange = real_fn<Exchange>("cuThreadExchangeStreamCaptureMode");
  CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
  if (exchange && exchange(&m) == CUDA_SUCCESS) {
    saved_ = static_cast<int>(m);
    changed_ = true;
  }
}

RelaxedCaptureMode::~RelaxedCaptureMode() {
  using Exchange = CUresult (*)(CUstreamCaptureMode*);
  static auto exchange = real_fn<Exchange>("cuThreadExchangeStreamCaptureMode");
  if (!changed_ || !exchange) return;
  auto m = static_cast<CUstreamCaptureMode>(saved_);
  exchange(&m);
}

void gate_note_context(void* ctx, int slot) {
  if (slot < 0 || slot >= 64) return;
  std::lock_guard<std::mutex> g(g_mu);
  for (auto& e : g_contexts)
    if (e.first == ctx) e.second = slot;
  if (std::none_of(g_contexts.begin(), g_contexts.end(), [&](auto& e) { return e.first == ctx; }))
    g_contexts.emplace_back(ctx, slot);
  g_slots_mask |= uint64_t{1} << slot;
  refresh_locked();
}

void gate_set_inflight_cap(uint32_t cap) { g_cap.store(cap ? cap : 1); }

void gate_after_launch(CUstream stream, bool per_thread, CUresult launch_result) {
  static auto create = real_fn<CUresult (*)(CUevent*, unsigned)>("cuEventCreate");
  static auto record = real_fn<CUresult (*)(CUevent, CUstream)>("cuEventRecord");
  static auto record_pt = real_fn<CUresult (*)(CUevent, CUstream)>("cuEventRecord_ptsz");
  void* ctx = t_throttle_ctx;
  t_throttle_ctx = nullptr;
  if (launch_result != CUDA_SUCCESS || !create || !record || !ctx) return;
  {
    std::lock_guard<std::mutex> g(g_inflight_mu);
    Inflight& f = g_inflight[ctx];
    ++f.uncovered;
    f.last_stream = stream;
    f.last_per_thread = per_thread;
    // The watcher parked: it believes nothing is queued, so this launch may be
    // the only one of a burst and needs its event for the idle report.
    bool first = !g_watcher_started.load(std::memory_order_relaxed) ||
                 g_watcher_parked.load(std::memory_order_seq_cst);
    if (f.uncovered >= batch_size() || first) {
      CUevent e = nullptr;
      if (!f.spare.empty()) {
        e = f.spare.back();
        f.spare.pop_back();
      } else if (create(&e, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) {
        e = nullptr;
      }
      auto rec = per_thread && record_pt ? record_pt : record;
      if (e && rec(e, stream) == CUDA_SUCCESS) {
        f.pending.push_back({e, f.uncovered});
        f.queued += f.uncovered;
        f.uncovered = 0;
        g_record_gen.fetch_add(1, std::memory_order_seq_cst);
      } else if (e) {
        f.spare.push_back(e);
      }
    }
  }
  // The watcher is woken only when it is parked or waits for an event; while
  // it syncs it re-reads the generations afterwards. (Sequentially consistent
  // pair: either it sees the new generation, or this launch sees it parked.)
  g_launch_gen.fetch_add(1, std::memory_order_seq_cst);
  if (!g_watcher_started.exchange(true)) std::thread(idle_watcher).detach();
  if (g_watcher_parked.load(std::memory_order_seq_cst) || g_watcher_waiting.load(std::memory_order_seq_cst)) {
    std::lock_guard<std::mutex> g(g_watch_mu);
    g_watch_cv.notify_one();
  }
}

namespace {

void report_idle_leases() {
  DaemonClient& c = DaemonClient::get();
  std::vector<int> devs;
  {
    std::lock_guard<std::mutex> g(g_mu);
    for (auto& [ctx, slot] : g_contexts) {
      int d = c.shm_device(slot);
      if (d >= 0 && std::find(devs.begin(), devs.end(), d) == devs.end()) devs.push_back(d);
    }
  }
  for (int d : devs) {
    int slot = -1;
    {
      std::lock_guard<std::mutex> g(g_mu);
      for (auto& [ctx, s] : g_contexts)
        if (c.shm_device(s) == d) slot = s;
    }
    LeaseWord* w = c.lease_word(slot);
    if (!w) continue;
    uint32_t s = w->state.load(std::memory_order_acquire);
    if (lease_granted(s) && (s & kLeaseContended)) c.report_idle(d, lease_epoch(s));
  }
}

// Waits (under the use lock) for the newest event of every context; true if
// some context has launches after its newest event (not covered by one).
bool sync_newest_events() {
  static auto sync = real_fn<CUresult (*)(CUevent)>("cuEventSynchronize");
  std::lock_guard<std::mutex> use(g_use_mu);  // no context is destroyed under these syncs
  std::vector<CUevent> newest;
  bool tail = false;
  {
    std::lock_guard<std::mutex> g(g_inflight_mu);
    for (auto& [ctx, f] : g_inflight) {
      if (!f.pending.empty()) newest.push_back(f.pending.back().event);
      tail |= f.uncovered > 0;
    }
  }
  for (CUevent e : newest)
    if (sync) sync(e);
  return tail;
}

// Records an event after the launches no throttle event follows (the end of a
// burst shorter than a batch), from the watcher's thread; false if none could
// be recorded (the launches stay uncovered until the next throttle event).
bool cover_tails() {
  static auto create = real_fn<CUresult (*)(CUevent*, unsigned)>("cuEventCreate");
  std::lock_guard<std::mutex> use(g_use_mu);
  std::lock_guard<std::mutex> g(g_inflight_mu);  // launches counted before the record are the ones it covers
  bool any = false;
  for (auto& [ctx, f] : g_inflight) {
    if (f.uncovered == 0) continue;
    CUevent e = nullptr;
    if (!f.spare.empty()) {
      e = f.spare.back();
      f.spare.pop_back();
    } else if (!create || create(&e, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) {
      continue;
    }
    if (!record_after_recent_work(ctx, f.last_stream, f.last_per_thread, e)) {
      f.spare.push_back(e);
      continue;
    }
    f.pending.push_back({e, f.uncovered});
    f.queued += f.uncovered;
    f.uncovered = 0;
    any = true;
  }
  if (any) g_record_gen.fetch_add(1, std::memory_order_seq_cst);
  return any;
}

// Parks until a throttled launch comes; waits for what is queued; reports the
// process idle once nothing is queued and no launch came for kIdleGrace. While
// launches come without events (between two batches), it waits for the next
// event, or kTailWait and then records one after them itself.
//
// The grace is adaptive: it is worth waiting only for a process whose next
// launch tends to come within it (a loop synchronizing after each kernel).
// One whose last pause outlasted the grace (an inference server between
// requests) reports idle as soon as its work is done, so the GPU is not left
// idle for the grace at every request; a short pause again turns the grace
// back on.
void idle_watcher() {
  RelaxedCaptureMode relaxed;  // for the thread's lifetime: never invalidates an application's capture
  uint64_t seen = 0;
  bool grace_helps = true;
  uint64_t done_at = 0;  // mono_ns() when the work finished and idle was reported; 0: not idle
  for (;;) {
    {
      std::unique_lock<std::mutex> l(g_watch_mu);
      g_watcher_parked.store(true, std::memory_order_seq_cst);
      g_watch_cv.wait(l, [&] { return g_launch_gen.load(std::memory_order_seq_cst) != seen; });
      g_watcher_parked.store(false, std::memory_order_seq_cst);
    }
    if (done_at) {
      // The pause ended at the first launch after it: one that had to wait
      // for the lease (it was handed on) says when it came.
      uint64_t began = g_lease_wait_began.load(std::memory_order_relaxed);
      uint64_t next = began > done_at ? began : mono_ns();
      grace_helps = next - done_at < static_cast<uint64_t>(std::chrono::nanoseconds(kIdleGrace).count());
      done_at = 0;
    }
    for (;;) {
      uint64_t gen = g_launch_gen.load(std::memory_order_seq_cst);
      uint64_t rec = g_record_gen.load(std::memory_order_seq_cst);
      seen = gen;
      bool tail = sync_newest_events();
      std::unique_lock<std::mutex> l(g_watch_mu);
      if (tail) {
        // Launches after the newest event: busy. Watch the next event if one
        // comes soon, else record one after them; park if that fails (the
        // next launch then records one).
        g_watcher_waiting.store(true, std::memory_order_seq_cst);
        bool recorded =
            g_watch_cv.wait_for(l, kTailWait, [&] { return g_record_gen.load(std::memory_order_seq_cst) != rec; });
        g_watcher_waiting.store(false, std::memory_order_seq_cst);
        if (recorded) continue;
        l.unlock();
        if (cover_tails()) continue;
        seen = g_launch_gen.load(std::memory_order_seq_cst);
        break;
      }
      if (g_launch_gen.load(std::memory_order_seq_cst) != gen) continue;
      // Everything launched is done; a launch within the grace keeps the lease.
      uint64_t done = mono_ns();
      if (grace_helps) {
        g_watcher_waiting.store(true, std::memory_order_seq_cst);
        bool launched =
            g_watch_cv.wait_for(l, kIdleGrace, [&] { return g_launch_gen.load(std::memory_order_seq_cst) != gen; });
        g_watcher_waiting.store(false, std::memory_order_seq_cst);
        if (launched) continue;
      }
      l.unlock();
      done_at = done;
      report_idle_leases();
      break;
    }
  }
}

}  // namespace

int gate_forget_context(void* ctx) {
  {
    std::lock_guard<std::mutex> g(g_inflight_mu);
    g_inflight.erase(ctx);  // the context's events die with it
  }
  int slot = -1;
  {
    std::lock_guard<std::mutex> g(g_mu);
    for (auto& e : g_contexts)
      if (e.first == ctx) slot = e.second;
    g_contexts.erase(std::remove_if(g_contexts.begin(), g_contexts.end(), [&](auto& e) { return e.first == ctx; }),
                     g_contexts.end());
    // The fast path stays on the slot while a context of it is left.
    uint64_t mask = 0;
    for (auto& e : g_contexts) mask |= uint64_t{1} << e.second;
    if (mask) {
      g_slots_mask = mask;
      refresh_locked();
    }
  }
  // Waits out a watcher pass or drain that took the context before it was dropped.
  std::lock_guard<std::mutex> barrier(g_use_mu);
  streams_forget_context(ctx);  // after the barrier: no drain recreates its events
  return slot;
}

void gate_refresh() {
  std::lock_guard<std::mutex> g(g_mu);
  refresh_locked();
}

void gate_reset_after_fork() {
  new (&g_mu) std::mutex();
  new (&g_use_mu) std::mutex();
  new (&g_watch_mu) std::mutex();
  new (&g_watch_cv) std::condition_variable();  // the parent's watcher thread does not exist here
  g_watcher_started.store(false);
  g_watcher_parked.store(false);
  g_watcher_waiting.store(false);
  new (&g_inflight_mu) std::mutex();
  g_inflight.clear();
  g_contexts.clear();
  g_slots_mask = 0;
  g_gate.single.store(nullptr);
  g_gate.touched.store(nullptr);
  streams_reset_after_fork();
}

void gate_drain(int dev) {
  std::lock_guard<std::mutex> use(g_use_mu);  // the contexts and their events stay alive until the drain ends
  std::vector<void*> mine;
  {
    std::lock_guard<std::mutex> g(g_mu);
    for (auto& [ctx, slot] : g_contexts)
      if (DaemonClient::get().shm_device(slot) == dev) mine.push_back(ctx);
  }
  // Everything queued under the lease runs to completion before vgpud hands
  // the GPU to the next tenant; that time is charged to this tenant. Per
  // stream, never cuCtxSynchronize: a context sync is refused while any stream
  // of it captures, in every capture mode, and invalidates the capture.
  for (void* ctx : mine) {
    std::vector<CUevent> throttled;
    {
      std::lock_guard<std::mutex> g(g_inflight_mu);
      auto it = g_inflight.find(ctx);
      if (it != g_inflight.end())
        for (const Pending& p : it->second.pending) throttled.push_back(p.event);
    }
    drain_context_streams(ctx, throttled);
  }
}

CUresult gate_slow(GateTicket* ticket) {
  HookCore& core = HookCore::get();
  core.ensure_daemon();
  DaemonClient& c = DaemonClient::get();
  switch (c.state()) {
    case DaemonClient::State::kRefused: return CUDA_ERROR_NOT_PERMITTED;
    case DaemonClient::State::kUnreachable:
      if (!c.fail_closed()) return CUDA_SUCCESS;
      if (!c.await_registration()) return CUDA_ERROR_NOT_PERMITTED;
      break;
    case DaemonClient::State::kIdle: return CUDA_SUCCESS;
    case DaemonClient::State::kRegistered: break;
  }
  int slot = core.current_slot();
  uint64_t waited_from = 0;
  for (;;) {
    LeaseWord* w = c.lease_word(slot);  // re-read: a reconnect maps new memory
    std::atomic<uint32_t>* touched = c.touched_word(slot);
    LeaseStats* stats = c.lease_stats(slot);
    if (!w || !touched) return CUDA_SUCCESS;  // no context (the driver says so) or not a GPU of vgpud
    if (!c.connected()) {
      // vgpud is away: its lease words mean nothing until it is back.
      if (!c.fail_closed()) return CUDA_SUCCESS;  // open: run ungated
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    uint32_t s = w->state.load(std::memory_order_acquire);
    if (lease_granted(s)) {
      touched->store(s, std::memory_order_relaxed);
      if (waited_from && stats) stats->wait_ns.fetch_add(mono_ns() - waited_from, std::memory_order_relaxed);
      if (s & kLeaseContended) {
        throttle_before_launch();
        ticket->throttled = true;
      }
      return CUDA_SUCCESS;
    }
    // A GPU this tenant may not use (quota 0 there: not in its devices, or
    // not part of its allocation) is never granted: refuse the launch rather
    // than wait forever (a container may see GPUs it was not given).
    if (const TenantControl* ctl = c.control(); ctl) {
      int dev = c.shm_device(slot);
      if (dev >= 0 && dev < static_cast<int>(kShmMaxDevices) &&
          ctl->devices[dev].limit.load(std::memory_order_acquire) == 0) {
        static std::atomic<bool> said{false};
        if (!said.exchange(true))
          VGPU_LOG(LogLevel::kError, "launch refused: this tenant has no share of GPU %d (not in its devices)", slot);
        return CUDA_ERROR_NOT_PERMITTED;
      }
    }
    c.request_lease(slot, waited_from != 0, s);
    if (!waited_from) {
      waited_from = mono_ns();
      g_lease_wait_began.store(waited_from, std::memory_order_relaxed);
    }
    if (stats) stats->waiting.fetch_add(1, std::memory_order_relaxed);
    lease_wait(w, s, kWaitSliceNs);
    if (stats) stats->waiting.fetch_sub(1, std::memory_order_relaxed);
  }
}

}  // namespace vgpu::hook
