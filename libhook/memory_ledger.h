// MemoryLedger: the quota book of device memory, per physical GPU.
//
// A device is named by its slot, a small integer DeviceMap assigns to each
// physical GPU by UUID (never by CUDA ordinal). reserve() is the only way to
// take memory: it succeeds iff used + bytes <= limit, atomically, so
// concurrent reservers never exceed the limit and are never refused below it.
//
// This interface is what the hook's policy code sees. LocalLedger (below) is
// the standalone, process-local implementation; the daemon mode will provide
// one backed by shared memory owned by vgpud, with the same contract.
// Thread-safety: implementations must be safe for concurrent use.
#pragma once

#include <atomic>
#include <cstdint>

#include "options.h"

namespace vgpu::hook {

class MemoryLedger {
 public:
  virtual ~MemoryLedger() = default;
  // Takes `bytes` on `slot` if that keeps usage within the limit.
  // Returns false (and changes nothing) otherwise. reserve(slot, 0) is true.
  virtual bool reserve(int slot, uint64_t bytes) = 0;
  // Returns `bytes` previously reserved on `slot`.
  virtual void release(int slot, uint64_t bytes) = 0;
  virtual uint64_t used(int slot) const = 0;
  // The quota of `slot`, kUnlimited if none.
  virtual uint64_t limit(int slot) const = 0;
};

// Process-local ledger: one atomic counter per slot, updated by CAS.
class LocalLedger final : public MemoryLedger {
 public:
  // limits[i] is the quota of slot i (kUnlimited for none).
  explicit LocalLedger(const uint64_t (&limits)[kMaxDevices]);
  bool reserve(int slot, uint64_t bytes) override;
  void release(int slot, uint64_t bytes) override;
  uint64_t used(int slot) const override;
  uint64_t limit(int slot) const override;
  // Forgets all usage (the child after fork() owns no device memory).
  void reset();

 private:
  struct alignas(64) Slot {  // one cache line each: devices do not contend
    std::atomic<uint64_t> used{0};
    uint64_t limit = kUnlimited;
  };
  Slot slots_[kMaxDevices];
};

}  // namespace vgpu::hook
