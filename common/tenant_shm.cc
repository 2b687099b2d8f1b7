#include "vgpu/tenant_shm.h"

#include "vgpu/robust_mutex.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstring>

namespace vgpu {
namespace {

// Recomputes every device's `used` from the process records. Called when a
// locker finds the lock's previous owner died inside a critical section.
void repair_locked(TenantShm* s) {
  for (uint32_t d = 0; d < s->device_count; ++d) {
    uint64_t sum = 0;
    for (auto& p : s->procs)
      if (p.pid.load() != 0) sum += p.used[d].load();
    s->devices[d].used.store(sum);
  }
}

void lock(TenantShm* s) {
  lock_robust(&s->lock, [s] { repair_locked(s); });
}

bool lock_within(TenantShm* s, uint64_t timeout_ns) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ns = static_cast<uint64_t>(ts.tv_nsec) + timeout_ns;
  ts.tv_sec += static_cast<time_t>(ns / 1'000'000'000ull);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000ull);
  int rc = pthread_mutex_timedlock(&s->lock, &ts);
  if (rc == EOWNERDEAD) {
    repair_locked(s);
    pthread_mutex_consistent(&s->lock);
    return true;
  }
  return rc == 0;
}

}  // namespace

void tenant_shm_init(TenantShm* s, uint32_t device_count) {
  init_robust_shared_mutex(&s->lock);
  s->device_count = device_count;
  for (auto& d : s->devices) d.limit.store(UINT64_MAX);
  s->layout = kTenantShmLayout;
  std::atomic_thread_fence(std::memory_order_release);
  s->magic = kTenantShmMagic;
}

int tenant_shm_claim(TenantShm* s, int32_t pid) {
  lock(s);
  int slot = -1;
  for (int i = 0; i < kShmMaxProcs && slot < 0; ++i) {
    ProcRecord& p = s->procs[i];
    if (p.pid.load() != 0) continue;
    for (int d = 0; d < kShmMaxDevices; ++d) {
      p.used[d].store(0);
      p.touched[d].store(0);
      p.launches[d].store(0);
    }
    p.pid.store(pid);
    slot = i;
  }
  pthread_mutex_unlock(&s->lock);
  return slot;
}

bool tenant_shm_release_proc(TenantShm* s, int slot, uint64_t timeout_ns) {
  if (slot < 0 || slot >= kShmMaxProcs) return true;
  if (!lock_within(s, timeout_ns)) return false;
  ProcRecord& p = s->procs[slot];
  for (uint32_t d = 0; d < s->device_count; ++d) s->devices[d].used.fetch_sub(p.used[d].exchange(0));
  p.pid.store(0);
  pthread_mutex_unlock(&s->lock);
  return true;
}

bool tenant_shm_reserve(TenantShm* s, int slot, int dev, uint64_t bytes) {
  ShmDevice& d = s->devices[dev];
  lock(s);
  uint64_t used = d.used.load(std::memory_order_relaxed);
  uint64_t limit = d.limit.load(std::memory_order_relaxed);
  bool ok = bytes <= limit && used <= limit - bytes;
  if (ok) {
    d.used.store(used + bytes, std::memory_order_relaxed);
    s->procs[slot].used[dev].fetch_add(bytes, std::memory_order_relaxed);
  } else {
    d.denied.fetch_add(1, std::memory_order_relaxed);
  }
  pthread_mutex_unlock(&s->lock);
  return ok;
}

void tenant_shm_release(TenantShm* s, int slot, int dev, uint64_t bytes) {
  lock(s);
  s->devices[dev].used.fetch_sub(bytes, std::memory_order_relaxed);
  s->procs[slot].used[dev].fetch_sub(bytes, std::memory_order_relaxed);
  pthread_mutex_unlock(&s->lock);
}

void tenant_shm_adopt(TenantShm* s, int slot, const uint64_t (&bytes)[kShmMaxDevices]) {
  lock(s);
  for (uint32_t d = 0; d < s->device_count; ++d) {
    s->devices[d].used.fetch_add(bytes[d]);
    s->procs[slot].used[d].fetch_add(bytes[d]);
  }
  pthread_mutex_unlock(&s->lock);
}

void lease_wake_all(LeaseWord* w) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&w->state), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void lease_wait(LeaseWord* w, uint32_t seen, uint64_t timeout_ns) {
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000ull), static_cast<long>(timeout_ns % 1'000'000'000ull)};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&w->state), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

}  // namespace vgpu
