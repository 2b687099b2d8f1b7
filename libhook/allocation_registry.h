// AllocationRegistry: what each live allocation was charged, so its free can
// return exactly that. Keys are whatever identifies the allocation to the
// driver (a CUdeviceptr, a CUmemGenericAllocationHandle, a CUarray, a
// CUcontext); each kind has its own registry. Each record also names the
// context that owned the allocation when it was made (0: none, e.g. VMM
// handles, which outlive contexts), so a context's teardown can return every
// charge it held (take_owned_by).
//
// It sits on every cuMemAlloc/cuMemFree, so its fast path is cheap: 64 shards
// chosen by a multiplicative hash of the key, each an open-addressing table
// (linear probing, deletion by backward shift: no tombstones) that holds the
// records inline, so adding or taking a record allocates nothing; a table
// doubles (one allocation, a rehash) when it is 3/4 full. Each shard has a
// test-and-set spinlock: one atomic exchange to lock and a release store to
// unlock. A waiter spins a bounded number of times, then yields the CPU, so a
// holder that is preempted does not make others burn their time slice.
//
// Thread-safety: safe for concurrent use. clear() alone assumes no other
// thread (the child after fork()).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace vgpu::hook {

struct Charge {
  int slot = -1;
  uint64_t bytes = 0;
  uint64_t ctx = 0;  // owning CUcontext; 0 if the allocation outlives contexts
};

class AllocationRegistry {
 public:
  AllocationRegistry() = default;
  ~AllocationRegistry();
  AllocationRegistry(const AllocationRegistry&) = delete;
  AllocationRegistry& operator=(const AllocationRegistry&) = delete;

  // Records `charge` for `key`, replacing any previous record.
  void add(uint64_t key, Charge charge);
  // Removes and returns the record of `key`; false if there is none (the
  // allocation was not charged, e.g. an IPC import or made before the hook).
  bool take(uint64_t key, Charge* out);
  // Removes every record owned by context `ctx` (!= 0), appending them to *out.
  void take_owned_by(uint64_t ctx, std::vector<Charge>* out);
  // Drops every record (the child after fork(): a lock may have been held by
  // a thread that no longer exists, so locks are reset, not taken).
  void clear();
  // Number of records (for tests and diagnostics).
  size_t size();

 private:
  struct Entry {
    uint64_t key;
    uint64_t bytes;
    uint64_t ctx;
    int32_t slot;
    uint32_t used;  // 1: this entry holds a record
  };
  // One allocation: the capacity (a power of two) and the entries after it,
  // so a table is always seen whole, even by the child of a fork() that
  // happened in the middle of a growth.
  struct Table {
    uint32_t capacity;
    uint32_t count;
    Entry entries[1];
  };
  struct alignas(64) Shard {
    std::atomic<bool> locked{false};
    Table* table = nullptr;
  };
  class Guard;

  static uint64_t hash(uint64_t key) { return key * 0x9E3779B97F4A7C15ull; }
  Shard& shard(uint64_t h) { return shards_[h >> 58]; }
  static uint32_t home(const Table* t, uint64_t h);
  static Entry* find(Table* t, uint64_t key, uint64_t h);
  static void erase(Table* t, Entry* e);
  static Table* grow(Table* t);

  static constexpr int kShards = 64;
  Shard shards_[kShards];
};

}  // namespace vgpu::hook
