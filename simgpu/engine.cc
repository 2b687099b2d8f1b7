// The execution engine of one simulated device, shared by every process of the
// node through NodeState. It runs one kernel at a time. A process that owns the
// timeslice keeps it while it has kernels queued, until the slice
// (SIMGPU_TIMESLICE) ends and another process waits; then the engine moves to
// the next waiting process in slot order, preempting a long kernel at the slice
// boundary and resuming it later, as a GPU without MPS time-slices contexts.
// Kernels "execute" by sleeping (with a short spin at the end for precision),
// so a simulated GPU costs little CPU.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "driver.h"
#include "util_samples.h"

namespace simgpu {
namespace {

constexpr uint64_t kSpinTailNs = 60'000;
constexpr uint64_t kMaxWaitNs = 5'000'000;      // bound on one futex wait
constexpr uint64_t kReapIntervalNs = 50'000'000;  // how often waiters look for dead owners

void futex_wait(std::atomic<uint32_t>* word, uint32_t seen, uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1'000'000'000ull), static_cast<long>(ns % 1'000'000'000ull)};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

void execute_for(uint64_t ns) {
  uint64_t end = monotonic_ns() + ns;
  if (ns > kSpinTailNs) {
    uint64_t wake = end - kSpinTailNs;
    timespec ts{static_cast<time_t>(wake / 1'000'000'000ull), static_cast<long>(wake % 1'000'000'000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
  }
  while (monotonic_ns() < end) {
  }
}

// The next slot after `from`, in cyclic order, with kernels queued; -1 if none.
int next_waiting(const EngineState& e, int from) {
  for (int i = 1; i <= kMaxProcesses; ++i) {
    int x = (from + i + kMaxProcesses) % kMaxProcesses;
    if (x != from && e.want[x].load() > 0) return x;
  }
  return -1;
}

// slice_end_ns == 0: the slice was handed over but its owner has not started
// it yet; it starts when the owner's kernel does, so wake-up latency does not
// eat the new owner's slice.
bool can_run(const EngineState& e, int me, uint64_t now) {
  if (e.running) return false;
  if (e.owner < 0 || e.owner == me) return true;
  return e.want[e.owner].load() == 0 || (e.slice_end_ns != 0 && now >= e.slice_end_ns);
}

// At a chunk boundary: give the engine to the next waiting process if the
// slice is over, else extend the slice while nobody waits.
void rotate_if_due(EngineState& e, int me, uint64_t now, uint64_t slice) {
  if (now < e.slice_end_ns) return;
  int next = next_waiting(e, me);
  if (next >= 0) {
    e.owner = next;
    e.slice_end_ns = 0;
  } else {
    e.slice_end_ns = now + slice;
  }
}

}  // namespace

void kernel_queued(int device) {
  Node& n = Driver::get().node();
  if (int me = n.slot(); me >= 0) n.state()->engine[device].want[me].fetch_add(1);
}

void engine_run(int device, uint64_t ns, bool count_kernel) {
  Node& n = Driver::get().node();
  NodeState* s = n.state();
  EngineState& e = s->engine[device];
  const int me = n.slot();
  if (me < 0) return;  // detached: the process is exiting
  const uint64_t slice = s->timeslice_ns;
  uint64_t remaining = ns;
  uint64_t last_reap = monotonic_ns();
  // exit() detaches the process while this executor may still run a kernel:
  // once its slot is gone (checked under the lock, before another process can
  // claim it) the work is abandoned, as a real GPU drops an exiting process's
  // work.
  auto still_attached = [&] {
    if (n.slot() == me) return true;
    n.unlock();
    return false;
  };
  n.lock();
  if (!still_attached()) return;
  for (;;) {
    uint64_t now = monotonic_ns();
    while (!can_run(e, me, now)) {
      uint32_t seen = e.wake.load();
      uint64_t wait = kMaxWaitNs;
      if (!e.running && e.slice_end_ns > now) wait = std::min(wait, e.slice_end_ns - now + 1000);
      if (!e.running && e.slice_end_ns == 0) wait = std::min<uint64_t>(wait, 1'000'000);
      n.unlock();
      futex_wait(&e.wake, seen, wait);
      n.lock();
      if (!still_attached()) return;
      now = monotonic_ns();
      if (now - last_reap > kReapIntervalNs) {
        reap_dead_locked(s);
        last_reap = now;
      }
    }
    if (e.owner != me || e.slice_end_ns == 0) {
      e.owner = me;
      e.slice_end_ns = now + slice;
    }
    e.running = 1;
    bool contended = next_waiting(e, me) >= 0;
    uint64_t chunk = remaining;
    if (contended && e.slice_end_ns > now) chunk = std::min(chunk, e.slice_end_ns - now);
    if (contended && e.slice_end_ns <= now) chunk = std::min(chunk, slice);
    busy_begin(s->procs[me], device, realtime_ns());
    n.unlock();

    uint64_t start = monotonic_ns();
    execute_for(chunk);
    uint64_t ran = monotonic_ns() - start;
    remaining -= std::min(remaining, std::max(ran, chunk));

    n.lock();
    if (!still_attached()) return;
    e.running = 0;
    // Stamped under the lock: an NVML sample taken meanwhile counted this
    // chunk up to its own "now", which is earlier than this one.
    busy_end(s->procs[me], device, realtime_ns());
    s->procs[me].busy_ns[device].fetch_add(ran);
    e.busy_ns.fetch_add(ran);
    if (remaining == 0 && count_kernel) e.want[me].fetch_sub(1);
    rotate_if_due(e, me, monotonic_ns(), slice);
    wake_engine(e);
    if (remaining == 0) break;
  }
  if (count_kernel) s->procs[me].kernels[device].fetch_add(1);
  n.unlock();
}

}  // namespace simgpu
