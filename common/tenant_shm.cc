#include "vgpu/tenant_shm.h"

#include "vgpu/robust_mutex.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace vgpu {
namespace {

// Rebuilds every device's `used` from the records of live processes and
// clears the records vgpud freed. Runs under the lock when vgpud freed a
// record since the last rebuild, or when a locker died inside.
void repair_locked(TenantShm s, uint32_t gen) {
  uint64_t sum[kShmMaxDevices] = {};
  for (int p = 0; p < kShmMaxProcs; ++p) {
    ProcRecord& r = s.led->procs[p];
    bool live = s.ctl->pids[p].load(std::memory_order_acquire) != 0;
    for (int d = 0; d < kShmMaxDevices; ++d) {
      if (live) sum[d] += r.used[d].load(std::memory_order_relaxed);
      else r.used[d].store(0, std::memory_order_relaxed);
    }
  }
  for (int d = 0; d < kShmMaxDevices; ++d) s.led->devices[d].used.store(sum[d], std::memory_order_relaxed);
  s.led->repaired_gen = gen;
}

void lock(TenantShm s) {
  uint32_t gen = s.ctl->release_gen.load(std::memory_order_acquire);
  bool repaired = false;
  lock_robust(&s.led->lock, [&] {
    repair_locked(s, gen);
    repaired = true;
  });
  if (!repaired && s.led->repaired_gen != gen) repair_locked(s, gen);
}

// `used` counters change only under the lock (vgpud only reads them), so a
// load and a store suffice: no locked read-modify-write on the allocation path.
void add_locked(std::atomic<uint64_t>& v, uint64_t delta) {
  v.store(v.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

bool in_range(int slot, int dev) { return slot >= 0 && slot < kShmMaxProcs && dev >= 0 && dev < kShmMaxDevices; }

}  // namespace

void tenant_control_init(TenantControl* c, uint32_t device_count) {
  c->device_count = device_count;
  for (auto& d : c->devices) d.limit.store(UINT64_MAX);
  c->layout = kTenantShmLayout;
  std::atomic_thread_fence(std::memory_order_release);
  c->magic = kTenantControlMagic;
}

void tenant_ledger_init(TenantLedger* l) {
  init_robust_shared_mutex(&l->lock);
  l->layout = kTenantShmLayout;
  std::atomic_thread_fence(std::memory_order_release);
  l->magic = kTenantLedgerMagic;
}

int tenant_shm_claim(TenantControl* c, bool (&taken)[kShmMaxProcs], int32_t pid) {
  for (int i = 0; i < kShmMaxProcs; ++i) {
    if (taken[i]) continue;
    taken[i] = true;
    c->pids[i].store(pid, std::memory_order_release);
    return i;
  }
  return -1;
}

void tenant_shm_free(TenantControl* c, bool (&taken)[kShmMaxProcs], int slot) {
  if (slot < 0 || slot >= kShmMaxProcs || !taken[slot]) return;
  taken[slot] = false;
  c->pids[slot].store(0, std::memory_order_release);
  c->release_gen.fetch_add(1, std::memory_order_acq_rel);
}

void tenant_shm_attach(TenantShm s, int slot, CollectCharges collect, void* ctx) {
  uint64_t bytes[kShmMaxDevices] = {};
  if (!in_range(slot, 0)) {
    collect(ctx, bytes);
    return;
  }
  lock(s);
  collect(ctx, bytes);
  ProcRecord& r = s.led->procs[slot];
  for (int d = 0; d < kShmMaxDevices; ++d) {
    // A previous owner's charges may still be counted (no repair since it
    // left): they go, and this process's own take their place.
    LedgerDevice& dev = s.led->devices[d];
    dev.used.fetch_sub(r.used[d].exchange(bytes[d], std::memory_order_relaxed), std::memory_order_relaxed);
    dev.used.fetch_add(bytes[d], std::memory_order_relaxed);
    r.touched[d].store(0, std::memory_order_relaxed);
    r.launches[d].store(0, std::memory_order_relaxed);
  }
  pthread_mutex_unlock(&s.led->lock);
}

bool tenant_shm_reserve(TenantShm s, int slot, int dev, uint64_t bytes, LedgerHook hook) {
  if (!in_range(slot, dev)) return false;
  LedgerDevice& d = s.led->devices[dev];
  uint64_t limit = s.ctl->devices[dev].limit.load(std::memory_order_acquire);
  lock(s);
  uint64_t used = d.used.load(std::memory_order_relaxed);
  bool ok = bytes <= limit && used <= limit - bytes;
  if (ok) {
    d.used.store(used + bytes, std::memory_order_relaxed);
    add_locked(s.led->procs[slot].used[dev], bytes);
    hook();
  } else {
    d.denied.fetch_add(1, std::memory_order_relaxed);
  }
  pthread_mutex_unlock(&s.led->lock);
  return ok;
}

void tenant_shm_release(TenantShm s, int slot, int dev, uint64_t bytes, LedgerHook hook) {
  if (!in_range(slot, dev)) return;
  lock(s);
  add_locked(s.led->devices[dev].used, uint64_t{0} - bytes);
  add_locked(s.led->procs[slot].used[dev], uint64_t{0} - bytes);
  hook();
  pthread_mutex_unlock(&s.led->lock);
}

void tenant_shm_adopt(TenantShm s, int slot, int dev, uint64_t bytes) {
  if (!in_range(slot, dev)) return;
  lock(s);
  add_locked(s.led->devices[dev].used, bytes);
  add_locked(s.led->procs[slot].used[dev], bytes);
  pthread_mutex_unlock(&s.led->lock);
}

uint64_t tenant_shm_used(TenantShm s, int dev) {
  if (!in_range(0, dev)) return 0;
  lock(s);
  uint64_t used = s.led->devices[dev].used.load(std::memory_order_relaxed);
  pthread_mutex_unlock(&s.led->lock);
  return used;
}

void lease_wake_all(LeaseWord* w) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&w->state), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void lease_wait(LeaseWord* w, uint32_t seen, uint64_t timeout_ns) {
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000ull), static_cast<long>(timeout_ns % 1'000'000'000ull)};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&w->state), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

bool seal_control_memfd(int fd) {
  return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) == 0;
}

bool seal_ledger_memfd(int fd) { return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0; }

}  // namespace vgpu
