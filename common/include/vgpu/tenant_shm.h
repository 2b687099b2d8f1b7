// TenantShm: the shared memory vgpud creates for one tenant (a memfd handed to
// each of the tenant's processes with SCM_RIGHTS). It holds the tenant-wide
// memory ledger per GPU, one record per process, and the GPU lease words.
//
// Memory ledger. `used` is exact across every process of the tenant: a process
// reserves under `lock` (never above `limit`, never refused below it) and
// records the same bytes in its own ProcRecord, so vgpud can return a dead
// process's charges. `lock` is a robust process-shared mutex: a process that
// dies holding it cannot wedge the tenant; the next locker recomputes `used`
// from the records (repair_locked).
//
// Leases. `state` of a LeaseWord is a futex word: bit 0 set while the tenant
// holds the execution lease of that GPU; bit 1 set while another tenant waits
// for it (the hook then caps its in-flight launches, so a preemption waits for
// little); bits 2.. an epoch that vgpud bumps on every grant and renewal. The
// hook's launch fast path is one load of it; vgpud clears bit 0 to revoke and
// futex-wakes waiters when it grants.
//
// Thread/process-safety: fields marked atomic are lock-free; the rest is
// guarded by `lock`. Only vgpud changes limits, the device table and leases.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>

namespace vgpu {

constexpr uint64_t kTenantShmMagic = 0x5647505554534831ull;  // "VGPUTSH1"
constexpr uint32_t kTenantShmLayout = 1;
constexpr int kShmMaxDevices = 8;
constexpr int kShmMaxProcs = 128;

struct ShmDevice {
  unsigned char uuid[16];
  std::atomic<uint64_t> limit;   // bytes; UINT64_MAX: unlimited
  std::atomic<uint64_t> used;    // bytes held by all processes of the tenant
  std::atomic<uint64_t> denied;  // allocations refused
};

struct alignas(64) LeaseWord {
  std::atomic<uint32_t> state;        // futex: (epoch << 1) | granted
  std::atomic<uint32_t> waiting;      // processes blocked for this lease
  std::atomic<uint64_t> wait_ns;      // total time launches waited (metrics)
};

struct alignas(64) ProcRecord {
  std::atomic<int32_t> pid;           // 0: free
  std::atomic<uint32_t> touched[kShmMaxDevices];  // lease state seen by a launch
  std::atomic<uint64_t> used[kShmMaxDevices];
  std::atomic<uint64_t> launches[kShmMaxDevices];
};

struct TenantShm {
  uint64_t magic;
  uint32_t layout;
  uint32_t device_count;
  pthread_mutex_t lock;
  ShmDevice devices[kShmMaxDevices];
  LeaseWord leases[kShmMaxDevices];
  ProcRecord procs[kShmMaxProcs];
};

// --- used by vgpud --------------------------------------------------------

// Initialises a zeroed TenantShm (robust mutex, magic).
void tenant_shm_init(TenantShm* s, uint32_t device_count);
// Claims a free ProcRecord for `pid`; -1 if all are taken.
int tenant_shm_claim(TenantShm* s, int32_t pid);
// Returns every charge of record `slot` to the tenant and frees the record.
// Gives up (returns false) if the lock cannot be taken within `timeout_ns`
// (a live process holding it too long); the caller retries later.
bool tenant_shm_release_proc(TenantShm* s, int slot, uint64_t timeout_ns);

// --- used by the hook -------------------------------------------------------

// Takes `bytes` on device `dev` for record `slot`: false (and counts a denial)
// if that would exceed the limit.
bool tenant_shm_reserve(TenantShm* s, int slot, int dev, uint64_t bytes);
void tenant_shm_release(TenantShm* s, int slot, int dev, uint64_t bytes);
// Adds charges the process already holds (after reconnecting to a new vgpud)
// without a limit check: the memory exists.
void tenant_shm_adopt(TenantShm* s, int slot, const uint64_t (&bytes)[kShmMaxDevices]);

// Futex helpers on a LeaseWord's state (process-shared).
void lease_wake_all(LeaseWord* w);
// Waits while state == seen, at most timeout_ns. Returns on change, timeout or signal.
void lease_wait(LeaseWord* w, uint32_t seen, uint64_t timeout_ns);

constexpr uint32_t kLeaseGranted = 1u;
constexpr uint32_t kLeaseContended = 2u;
constexpr int kLeaseEpochShift = 2;
inline bool lease_granted(uint32_t state) { return (state & kLeaseGranted) != 0; }
inline uint32_t lease_epoch(uint32_t state) { return state >> kLeaseEpochShift; }

}  // namespace vgpu
