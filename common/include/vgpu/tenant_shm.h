// The shared memory vgpud creates for one tenant, in two memfds handed to each
// of the tenant's processes with SCM_RIGHTS (protocol.h, Welcome):
//
// TenantControl — written by vgpud only. Tenants get it sealed with
// F_SEAL_FUTURE_WRITE (and F_SEAL_SEAL), so they can map it read-only and
// nothing else: no writable mapping, no write(), no mprotect upgrade. It holds
// what decides a tenant's rights: the per-GPU memory limits, the GPU lease
// words, which process owns which record, and whether the tenant still exists.
//
// TenantLedger — written by the tenant's processes (sealed against resizing,
// so a tenant cannot make vgpud's mapping fault). It holds the tenant-wide
// usage per GPU, one record per process, and lease-wait statistics. A tenant
// can scribble on it, but that only misleads its own shim: vgpud never uses a
// ledger value as an index, a loop bound or a grant, never takes its lock, and
// checks memory against physical usage (NVML) from outside (docs/security.md).
//
// Memory ledger. `used` is exact across every cooperating process of the
// tenant: a process reserves under `lock` (never above the control block's
// `limit`, never refused below it) and records the same bytes in its own
// ProcRecord. When a process goes away vgpud only clears its pid in the
// control block and bumps `release_gen`; the next locker sees the generation
// change and recomputes `used` from the records of live processes (repair).
// `lock` is a robust process-shared mutex: a process that dies holding it
// cannot wedge the tenant; the next locker repairs likewise.
//
// Leases. `state` of a LeaseWord is a futex word (in the control block): bit 0
// set while the tenant holds the execution lease of that GPU; bit 1 set while
// another tenant waits for it (the hook then caps its in-flight launches, so a
// preemption waits for little); bits 2.. an epoch that vgpud bumps on every
// grant and renewal. The hook's launch fast path is one load of it; vgpud
// clears bit 0 to revoke and futex-wakes waiters when it grants.
//
// Thread/process-safety: fields marked atomic are lock-free; the ledger's
// plain counters are guarded by its `lock`, and so are the `used` counters
// (devices and records): atomic so that vgpud's unlocked reads are defined,
// but hooks change them only under `lock`, with a load and a store.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>

namespace vgpu {

constexpr uint64_t kTenantControlMagic = 0x5647505543544c32ull;  // "VGPUCTL2"
constexpr uint64_t kTenantLedgerMagic = 0x564750554c454432ull;   // "VGPULED2"
constexpr uint32_t kTenantShmLayout = 3;  // 3: TenantControl::context_overhead
constexpr int kShmMaxDevices = 8;
constexpr int kShmMaxProcs = 128;

// --- read-only to tenants ---------------------------------------------------

struct alignas(64) LeaseWord {
  std::atomic<uint32_t> state;        // futex: (epoch << 2) | contended << 1 | granted
};

struct ControlDevice {
  unsigned char uuid[16];
  std::atomic<uint64_t> limit;   // bytes; UINT64_MAX: unlimited
};

enum class TenantStatus : uint32_t { kActive = 0, kDeleted = 1 };

struct TenantControl {
  uint64_t magic;
  uint32_t layout;
  uint32_t device_count;
  std::atomic<uint32_t> status;        // TenantStatus
  std::atomic<uint32_t> release_gen;   // bumped when vgpud frees a record
  ControlDevice devices[kShmMaxDevices];
  LeaseWord leases[kShmMaxDevices];
  std::atomic<int32_t> pids[kShmMaxProcs];  // owner of each record (vgpud's pid namespace); 0: free
  // Bytes: the least each of the tenant's contexts is charged (the hook
  // charges what it measures the driver took, never less than this).
  // vgpud's enforcement.context_overhead; never the tenant's environment.
  std::atomic<uint64_t> context_overhead;
};

// --- written by the tenant's processes ----------------------------------------

struct LedgerDevice {
  std::atomic<uint64_t> used;    // bytes held by all processes of the tenant
  std::atomic<uint64_t> denied;  // allocations refused
};

struct alignas(64) LeaseStats {
  std::atomic<uint32_t> waiting;      // processes blocked for this lease
  std::atomic<uint64_t> wait_ns;      // total time launches waited (metrics)
};

struct alignas(64) ProcRecord {
  std::atomic<uint32_t> touched[kShmMaxDevices];  // lease state seen by a launch
  std::atomic<uint64_t> used[kShmMaxDevices];
  std::atomic<uint64_t> launches[kShmMaxDevices];
};

struct TenantLedger {
  uint64_t magic;
  uint32_t layout;
  uint32_t repaired_gen;               // release_gen the usage was last rebuilt for
  pthread_mutex_t lock;
  LedgerDevice devices[kShmMaxDevices];
  LeaseStats lease_stats[kShmMaxDevices];
  ProcRecord procs[kShmMaxProcs];
};

// Both halves, as mapped by one process.
struct TenantShm {
  TenantControl* ctl = nullptr;   // read-only in tenants
  TenantLedger* led = nullptr;
};

// --- used by vgpud --------------------------------------------------------

// Initialises zeroed memory (robust mutex, magic, unlimited limits).
void tenant_control_init(TenantControl* c, uint32_t device_count);
void tenant_ledger_init(TenantLedger* l);
// Claims a free record for `pid` in vgpud's own `taken` table (never read
// from tenant memory); -1 if all are taken. The record is zeroed by the
// process itself when it attaches.
int tenant_shm_claim(TenantControl* c, bool (&taken)[kShmMaxProcs], int32_t pid);
// Frees record `slot`: its charges leave the tenant's usage at the next
// locker's repair. Never blocks, never reads tenant memory.
void tenant_shm_free(TenantControl* c, bool (&taken)[kShmMaxProcs], int slot);
// A tenant-written 64-bit counter made safe to display: values above `cap`
// (memory or time no tenant can hold) read as `cap`.
inline uint64_t clamp_reported(uint64_t v, uint64_t cap) { return v > cap ? cap : v; }

// --- used by the hook -------------------------------------------------------

// Work the caller does inside the ledger's critical section, so that it is
// atomic with the shared update with respect to every other locker of the
// same memory (ShmLedger keeps this process's own charge this way:
// shm_ledger.h). Called with the lock held; must be short and must not lock.
struct LedgerHook {
  void (*fn)(void* ctx) = nullptr;
  void* ctx = nullptr;
  void operator()() const {
    if (fn) fn(ctx);
  }
};

// Makes record `slot` fresh for this process and adds the charges it already
// holds (after reconnecting to a new vgpud) without a limit check: the memory
// exists. `collect` fills those charges under the lock (it runs, with the
// lock or without it, even when `slot` is out of range and nothing is added).
using CollectCharges = void (*)(void* ctx, uint64_t (&bytes)[kShmMaxDevices]);
void tenant_shm_attach(TenantShm s, int slot, CollectCharges collect, void* ctx);
// Takes `bytes` on device `dev` for record `slot`: false (and counts a denial)
// if that would exceed the limit. `hook` runs under the lock iff it succeeds.
bool tenant_shm_reserve(TenantShm s, int slot, int dev, uint64_t bytes, LedgerHook hook = {});
// Returns `bytes`; `hook` runs under the lock (iff the arguments are in range).
void tenant_shm_release(TenantShm s, int slot, int dev, uint64_t bytes, LedgerHook hook = {});
// Adds `bytes` to record `slot` without a limit check: memory this process
// already holds (ShmLedger moving a charge between memories).
void tenant_shm_adopt(TenantShm s, int slot, int dev, uint64_t bytes);
// The tenant's usage of device `dev`, repaired first if a process left.
uint64_t tenant_shm_used(TenantShm s, int dev);

// Futex helpers on a LeaseWord's state (process-shared; waiting works on a
// read-only mapping).
void lease_wake_all(LeaseWord* w);
// Waits while state == seen, at most timeout_ns. Returns on change, timeout or signal.
void lease_wait(LeaseWord* w, uint32_t seen, uint64_t timeout_ns);

constexpr uint32_t kLeaseGranted = 1u;
constexpr uint32_t kLeaseContended = 2u;
constexpr int kLeaseEpochShift = 2;
inline bool lease_granted(uint32_t state) { return (state & kLeaseGranted) != 0; }
inline uint32_t lease_epoch(uint32_t state) { return state >> kLeaseEpochShift; }

// Seals applied by vgpud: the control memfd after vgpud mapped it writable
// (F_SEAL_FUTURE_WRITE: nobody can map it writable again), the ledger memfd
// (size fixed). Both with F_SEAL_SEAL. Returns false with errno on failure.
bool seal_control_memfd(int fd);
bool seal_ledger_memfd(int fd);

}  // namespace vgpu
