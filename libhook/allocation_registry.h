// AllocationRegistry: what each live allocation was charged, so its free can
// return exactly that. Keys are whatever identifies the allocation to the
// driver (a CUdeviceptr, a CUmemGenericAllocationHandle, a CUarray, a
// CUcontext); each kind has its own registry. Each record also names the
// context that owned the allocation when it was made (0: none, e.g. VMM
// handles, which outlive contexts), so a context's teardown can return every
// charge it held (take_owned_by).
//
// Thread-safety: safe for concurrent use; sharded by key so threads working on
// different allocations rarely share a lock.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace vgpu::hook {

struct Charge {
  int slot = -1;
  uint64_t bytes = 0;
  uint64_t ctx = 0;  // owning CUcontext; 0 if the allocation outlives contexts
};

class AllocationRegistry {
 public:
  // Records `charge` for `key`, replacing any previous record.
  void add(uint64_t key, Charge charge);
  // Removes and returns the record of `key`; false if there is none (the
  // allocation was not charged, e.g. an IPC import or made before the hook).
  bool take(uint64_t key, Charge* out);
  // Removes every record owned by context `ctx` (!= 0), appending them to *out.
  void take_owned_by(uint64_t ctx, std::vector<Charge>* out);
  // Drops every record (the child after fork()).
  void clear();

 private:
  static constexpr int kShards = 64;
  struct alignas(64) Shard {
    std::mutex mu;
    std::unordered_map<uint64_t, Charge> map;
  };
  Shard& shard(uint64_t key);
  Shard shards_[kShards];
};

}  // namespace vgpu::hook
