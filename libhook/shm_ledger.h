// ShmLedger: the MemoryLedger of daemon mode, backed by the tenant's shared
// memory that vgpud hands over (tenant_shm.h). Usage is tenant-wide and exact
// across processes; this process's own charges are also kept here so that,
// after vgpud restarts, they can be re-registered in the new shared memory.
//
// Before attach() (or after a refusal) it has no quota at all: every reserve
// fails, limit() is 0. Thread-safety: all methods are thread-safe; attach()
// excludes concurrent reserve/release while it switches memory.
#pragma once

#include <atomic>
#include <shared_mutex>

#include "memory_ledger.h"
#include "vgpu/tenant_shm.h"

namespace vgpu::hook {

class ShmLedger final : public MemoryLedger {
 public:
  ShmLedger();
  // Uses `shm`, record `proc`; dev_of_slot[i] is the shm device of hook slot i
  // (-1: a GPU vgpud does not manage: quota 0). Charges this process already
  // holds are added to the new memory (a reconnect after vgpud restarted).
  void attach(TenantShm shm, int proc, const int (&dev_of_slot)[kMaxDevices]);
  // Counts `bytes` as this process's own charge on `slot` (memory it took
  // before it registered), so attach() adds it to the tenant.
  void seed(int slot, uint64_t bytes);
  // Forgets the memory and this process's charges (the child after fork()).
  void reset();
  bool reserve(int slot, uint64_t bytes) override;
  void release(int slot, uint64_t bytes) override;
  uint64_t used(int slot) const override;
  uint64_t limit(int slot) const override;
  // This process's own charge on `slot`.
  uint64_t mine(int slot) const;

 private:
  int dev(int slot) const { return slot >= 0 && slot < kMaxDevices ? dev_[slot] : -1; }

  mutable std::shared_mutex mu_;
  TenantShm shm_;
  int proc_ = -1;
  int dev_[kMaxDevices];
  std::atomic<uint64_t> mine_[kMaxDevices];
};

}  // namespace vgpu::hook
