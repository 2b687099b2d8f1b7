// ShmLedger: the MemoryLedger of daemon mode, backed by the tenant's shared
// memory that vgpud hands over (tenant_shm.h). Usage is tenant-wide and exact
// across processes; this process's own charges are also kept here so that,
// after vgpud restarts, they can be re-registered in the new shared memory.
//
// Before attach() (or after a refusal) it has no quota at all: every reserve
// fails, limit() is 0.
//
// Lock-free against attach. reserve/release sit on every allocation, attach
// (registration, reconnect after a vgpud restart) is rare, so the common
// path takes no lock of this class:
// - The memory in use is an immutable Binding {shm, record, device map,
//   epoch} published through an atomic pointer. Bindings are never freed (a
//   few per process lifetime; an old one's memory stays mapped anyway), so a
//   thread may keep using the one it loaded.
// - This process's own charge on each slot is one atomic word: the epoch of
//   the binding it belongs to in the top kEpochBits, the bytes (modulo 2^52)
//   below. reserve/release change it with one CAS, inside the shared
//   ledger's critical section (LedgerHook), so that against another locker
//   of the same memory the shared update and this one are a single step.
// - attach() bumps every word to the new epoch inside the new memory's
//   critical section, adopting the bytes the words hold at that instant,
//   then publishes the new binding. An operation's CAS therefore either
//   precedes the bump (its bytes are adopted with the rest: nothing to do)
//   or follows it (it sees the new epoch: not adopted, and its shared update
//   went to the old binding). In the second case it settles under mu_, after
//   the attach finished: if the binding of the epoch it saw is still current,
//   it undoes its update in the old memory and does it in the current one; if
//   a later attach came since, that one adopted the word with this change in
//   it, and nothing is left to do. When old and new are the same memory the
//   undo and redo cancel out (the operation ran after the attach's adopt,
//   since the bump was inside the same lock), moving the bytes to the new
//   record if it changed. Hence after every operation has returned, the
//   current memory holds exactly this process's charges.
// - reset() is an attach to nothing: words bumped and zeroed, an empty
//   binding published.
//
// Thread-safety: all methods are thread-safe, except reset_after_fork() (the
// only thread of a forked child).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "memory_ledger.h"
#include "vgpu/tenant_shm.h"

namespace vgpu::hook {

class ShmLedger final : public MemoryLedger {
 public:
  ShmLedger();
  // Uses `shm`, record `proc`; dev_of_slot[i] is the shm device of hook slot i
  // (-1: a GPU vgpud does not manage: quota 0). Charges this process already
  // holds are added to the new memory (a reconnect after vgpud restarted),
  // including those of reserve/release calls running at the same time.
  void attach(TenantShm shm, int proc, const int (&dev_of_slot)[kMaxDevices]);
  // Counts `bytes` as this process's own charge on `slot` (memory it took
  // before it registered), so attach() adds it to the tenant.
  void seed(int slot, uint64_t bytes);
  // Forgets the memory and this process's charges (registration lost).
  void reset();
  // reset() in the child after fork(): the lock may be held by a thread that
  // does not exist there.
  void reset_after_fork();
  bool reserve(int slot, uint64_t bytes) override;
  void release(int slot, uint64_t bytes) override;
  uint64_t used(int slot) const override;
  uint64_t limit(int slot) const override;
  // This process's own charge on `slot`.
  uint64_t mine(int slot) const;

 private:
  struct Binding {
    TenantShm shm;
    int proc = -1;
    int dev[kMaxDevices];
    uint64_t epoch = 0;  // modulo 2^kEpochBits
  };
  struct Change;
  struct Adopt;

  static constexpr int kEpochBits = 12;
  static constexpr int kBytesBits = 64 - kEpochBits;
  static constexpr uint64_t kBytesMask = (uint64_t{1} << kBytesBits) - 1;

  const Binding* binding() const { return bind_.load(std::memory_order_acquire); }
  static bool shared(const Binding* b, int slot) { return b->shm.led && b->dev[slot] >= 0; }
  static uint64_t bytes_of(uint64_t word);
  void bump_all(uint64_t epoch, bool zero, uint64_t (*adopt)[kShmMaxDevices], const Binding* n);
  void settle(const Binding* b, int slot, uint64_t bytes, bool released, uint64_t seen_epoch);
  void publish_empty(uint64_t epoch);

  std::mutex mu_;  // attach, reset and settling an operation that raced one
  uint64_t epoch_ = 0;  // the newest epoch handed out; guarded by mu_
  std::atomic<const Binding*> bind_;
  std::atomic<uint64_t> mine_[kMaxDevices];
};

}  // namespace vgpu::hook
