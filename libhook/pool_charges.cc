#include "pool_charges.h"

#include <algorithm>
#include <new>

#include "cuda_api.h"
#include "log.h"
#include "real_driver.h"

namespace vgpu::hook {
namespace {

using PoolGetAttribute = CUresult (*)(CUmemoryPool, CUmemPool_attribute, void*);
using PoolTrimTo = CUresult (*)(CUmemoryPool, size_t);

// The pool's reserved bytes; false with *gone set when the driver says the
// handle is no longer a pool (destroyed, or its device's context torn down).
bool reserved_of(uint64_t pool, uint64_t* out, bool* gone) {
  static auto get = reinterpret_cast<PoolGetAttribute>(real_cuda_symbol("cuMemPoolGetAttribute"));
  *gone = false;
  if (!get) return false;
  cuuint64_t v = 0;
  CUresult r = get(reinterpret_cast<CUmemoryPool>(pool), CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &v);
  if (r == CUDA_SUCCESS) {
    *out = v;
    return true;
  }
  *gone = r == CUDA_ERROR_INVALID_VALUE || r == CUDA_ERROR_INVALID_HANDLE;
  return false;
}

}  // namespace

bool PoolCharges::settle_locked(uint64_t pool, Entry& e, MemoryLedger& ledger, uint64_t* upfront) {
  uint64_t reserved = 0;
  bool gone = false;
  if (!reserved_of(pool, &reserved, &gone)) {
    if (!gone) return true;  // e.g. a driver shutting down: keep the charge
    reserved = 0;
  }
  if (reserved < e.charged) {
    ledger.release(e.slot, e.charged - reserved);
    e.charged = reserved;
  } else if (reserved > e.charged) {
    // Normally covered by the allocation's up-front charge; if not (the pool
    // reserved more than was asked), the rest stays owed until the next settle.
    if (upfront) {
      uint64_t moved = std::min(*upfront, reserved - e.charged);
      *upfront -= moved;
      e.charged += moved;
    }
    if (reserved == e.charged) return true;
    if (ledger.reserve(e.slot, reserved - e.charged)) e.charged = reserved;
    else VGPU_LOG(LogLevel::kDebug, "pool %#llx: %llu reserved bytes not yet charged",
                  static_cast<unsigned long long>(pool), static_cast<unsigned long long>(reserved - e.charged));
  }
  return !gone;
}

void PoolCharges::note_and_settle(uint64_t pool, int slot, MemoryLedger& ledger, uint64_t upfront) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> g(mu_);
  if (!pool) {
    // The pool is unknown (no cuDeviceGetMemPool): the allocation keeps its
    // charge, which no free will return — an over-charge, never an under-charge.
    return;
  }
  auto [it, inserted] = pools_.try_emplace(pool);
  if (inserted || it->second.slot != slot) {
    // A new pool, or a handle the driver reused on another device: the old
    // entry's charge (if any) belongs to the old slot.
    if (!inserted && it->second.charged) ledger.release(it->second.slot, it->second.charged);
    it->second = Entry{slot, 0};
  }
  if (!settle_locked(pool, it->second, ledger, &upfront)) pools_.erase(it);
  if (upfront) ledger.release(slot, upfront);
}

void PoolCharges::settle_all(int slot, MemoryLedger& ledger) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (slot >= 0 && it->second.slot != slot) {
      ++it;
      continue;
    }
    it = settle_locked(it->first, it->second, ledger) ? std::next(it) : pools_.erase(it);
  }
}

bool PoolCharges::trim_and_settle(int slot, MemoryLedger& ledger) {
  static auto trim = reinterpret_cast<PoolTrimTo>(real_cuda_symbol("cuMemPoolTrimTo"));
  std::lock_guard<std::mutex> g(mu_);
  bool returned = false;
  for (auto it = pools_.begin(); it != pools_.end();) {
    Entry& e = it->second;
    if (e.slot != slot) {
      ++it;
      continue;
    }
    uint64_t before = e.charged;
    if (trim) trim(reinterpret_cast<CUmemoryPool>(it->first), 0);
    bool alive = settle_locked(it->first, e, ledger);
    if (e.charged < before) returned = true;
    if (before != e.charged)
      VGPU_LOG(LogLevel::kInfo, "pool %#llx trimmed: charge %llu -> %llu bytes",
               static_cast<unsigned long long>(it->first), static_cast<unsigned long long>(before),
               static_cast<unsigned long long>(e.charged));
    it = alive ? std::next(it) : pools_.erase(it);
  }
  return returned;
}

void PoolCharges::clear() {
  new (&mu_) std::mutex();  // the lock may have been held by a thread that no longer exists
  pools_.clear();
}

}  // namespace vgpu::hook
