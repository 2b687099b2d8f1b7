// The launch gate of daemon mode: a kernel (and every other launch kind) runs
// only while the tenant holds the GPU's execution lease.
//
// Fast path (inline, every launch): one relaxed load of `active`, one of the
// lease pointer of the process's only GPU, one acquire load of the lease word
// and a compare — no syscall, no lock, no clock. The first launch of a lease
// epoch also stores the epoch into this process's record (so vgpud knows whom
// to drain). Everything else — several GPUs, no lease, vgpud gone — is the
// slow path (launch_gate.cc), which asks vgpud for the lease and sleeps on the
// lease word (a futex) until vgpud grants it.
//
// While another tenant waits for the GPU (bit 1 of the lease word) launches
// take the throttled path: it counts the context's launches not yet known
// complete and records an event only after every cap/4 launches (and after the
// first of a burst); a launch finding `inflight_cap` launches unfinished first
// waits for the oldest event, so a preemption never waits for more than that
// much queued work. Below the cap the throttled path makes no event query.
// An idle watcher thread waits for the newest event (recording one itself
// after a burst's last launches if none follows them within 1 ms) and reports
// the process idle once nothing is queued and nothing was launched for a
// short grace (300 µs): a loop that synchronizes after each kernel keeps the
// lease instead of handing it over at every synchronization.
// Thread-safety: all functions are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

#include "cuda_api.h"
#include "vgpu/tenant_shm.h"

namespace vgpu::hook {

struct GateState {
  std::atomic<bool> active{false};                // daemon mode
  std::atomic<LeaseWord*> single{nullptr};        // lease of the process's only GPU
  std::atomic<std::atomic<uint32_t>*> touched{nullptr};  // its record's touched word
};

extern GateState g_gate;

// Set by the gate when the launch must be followed by gate_after_launch().
struct GateTicket {
  bool throttled = false;
};

CUresult gate_slow(GateTicket* t);

inline CUresult gate_launch(GateTicket* ticket) {
  if (!g_gate.active.load(std::memory_order_relaxed)) return CUDA_SUCCESS;
  LeaseWord* w = g_gate.single.load(std::memory_order_relaxed);
  if (w) {
    uint32_t s = w->state.load(std::memory_order_acquire);
    if ((s & (kLeaseGranted | kLeaseContended)) == kLeaseGranted) {
      std::atomic<uint32_t>* t = g_gate.touched.load(std::memory_order_relaxed);
      if (t->load(std::memory_order_relaxed) != s) t->store(s, std::memory_order_relaxed);
      return CUDA_SUCCESS;
    }
  }
  return gate_slow(ticket);
}

// The whole fast path without calls, so a wrapper can end in a tail call:
// true if the launch may go ahead now (standalone, or the lease of the
// process's only GPU is held and uncontended).
inline bool gate_fast_path() {
  if (!g_gate.active.load(std::memory_order_relaxed)) return true;
  LeaseWord* w = g_gate.single.load(std::memory_order_relaxed);
  if (!w) return false;
  uint32_t s = w->state.load(std::memory_order_acquire);
  if ((s & (kLeaseGranted | kLeaseContended)) != kLeaseGranted) return false;
  std::atomic<uint32_t>* t = g_gate.touched.load(std::memory_order_relaxed);
  if (t->load(std::memory_order_relaxed) != s) t->store(s, std::memory_order_relaxed);
  return true;
}

// True if `stream` (`per_thread`: of a _ptsz entry point) is being captured
// into a graph: such a launch only records a node, so it is neither gated nor
// followed by an event (an event in a capture cannot be queried, and waiting
// for a lease inside a capture gains nothing). The graph is gated when it is
// launched. Any answer but "active" (IMPLICIT on the legacy stream, errors)
// counts as not capturing: the driver then gives the launch its own error.
bool gate_stream_capturing(CUstream stream, bool per_thread);
// Runs the hook's own potentially unsafe calls (event queries, syncs) in
// RELAXED capture mode on the calling thread, so they never invalidate a
// capture another stream of the process is making; restores the mode after.
class RelaxedCaptureMode {
 public:
  RelaxedCaptureMode();
  ~RelaxedCaptureMode();

 private:
  int saved_;
  bool changed_ = false;
};

// After a throttled launch on `stream` (`per_thread`: a _ptsz/_ptds entry
// point, whose NULL stream is the per-thread one): records its completion event.
void gate_after_launch(CUstream stream, bool per_thread, CUresult launch_result);
// Sets the cap (from vgpud's Welcome).
void gate_set_inflight_cap(uint32_t cap);

// A context of hook slot `slot` exists in this process (it may be the only
// GPU: then the fast path applies). `ctx` is remembered for draining, once
// however often it is noted (a primary context is retained many times).
void gate_note_context(void* ctx, int slot);
// Before the driver destroys `ctx`: the gate drops it and its throttle events
// and returns once none of the hook's own threads (idle watcher, drain) still
// uses them. Returns the slot it was noted with (-1: not known), so a failed
// destroy can note it again.
int gate_forget_context(void* ctx);
// Re-reads lease pointers (after registration or a reconnect).
void gate_refresh();
// Waits for this process's queued work on shm device `dev` (a revoked lease):
// per-stream events of every stream not being captured, never a context or
// device sync (stream_drain.h), plus the pending throttle events.
void gate_drain(int dev);
void gate_reset_after_fork();

}  // namespace vgpu::hook
