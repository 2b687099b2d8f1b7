// PoolCharges: stream-ordered memory pools are charged for the device memory
// they keep (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), not for their live
// allocations. A pool keeps freed memory up to its release threshold (PyTorch
// sets it to UINT64_MAX), so charging only live allocations would let a
// process physically hold far more than its quota.
//
// Model. Every pool an allocation went through (cuMemAllocAsync's current
// pool of the stream's device, cuMemAllocFromPoolAsync's pool) is tracked with
// the bytes the ledger holds for it (`charged`). settle() reads the pool's
// reserved memory and moves the ledger to it. The driver returns reserved
// memory on its own (at synchronization above the release threshold, on
// cuMemPoolTrimTo, pool destruction, context teardown); the hook does not
// intercept those points but settles lazily: at each allocation through the
// pool, before any refusal (HookCore::charge), at context teardown and in
// cuMemGetInfo. Between those points the charge may exceed what the pool
// keeps (never the reverse, except `debt` below), which errs on the side of
// the quota and never causes a refusal, since a refusal settles first.
//
// Growth that the ledger cannot take at settlement (a pool reserving more
// than the bytes charged up front, e.g. rounding to its granularity, while
// the quota is full) is remembered as debt and charged at the next settle.
//
// Thread-safety: all methods are thread-safe (one mutex; pools are few).
// Never calls HookCore::charge (no recursion from the refusal path).
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "memory_ledger.h"

namespace vgpu::hook {

class PoolCharges {
 public:
  // Starts tracking `pool` (a CUmemoryPool) on `slot` if not yet tracked,
  // then settles it. Called after an allocation through the pool with the
  // `upfront` bytes that allocation reserved on `slot`: they pay for the
  // pool's growth first, and what they do not cover is released.
  void note_and_settle(uint64_t pool, int slot, MemoryLedger& ledger, uint64_t upfront);
  // Settles every tracked pool (on `slot` only when slot >= 0). A pool the
  // driver no longer knows (destroyed, or its context torn down) returns its
  // whole charge and is forgotten.
  void settle_all(int slot, MemoryLedger& ledger);
  // Trims every tracked pool on `slot` to 0 bytes (cuMemPoolTrimTo keeps
  // memory still allocated) and settles it. Returns true if any charge came back.
  bool trim_and_settle(int slot, MemoryLedger& ledger);
  // Forgets every pool without touching a ledger (the child after fork()).
  void clear();

 private:
  struct Entry {
    int slot = -1;
    uint64_t charged = 0;  // bytes the ledger holds for this pool
  };
  // Moves the ledger toward the pool's reserved memory, paying growth from
  // *upfront (bytes already reserved) before reserving more; false if the
  // pool is gone.
  static bool settle_locked(uint64_t pool, Entry& e, MemoryLedger& ledger, uint64_t* upfront = nullptr);

  std::mutex mu_;
  std::unordered_map<uint64_t, Entry> pools_;
};

}  // namespace vgpu::hook
