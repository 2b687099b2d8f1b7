#include "memory_ledger.h"

namespace vgpu::hook {

LocalLedger::LocalLedger(const uint64_t (&limits)[kMaxDevices]) {
  for (int i = 0; i < kMaxDevices; ++i) slots_[i].limit = limits[i];
}

bool LocalLedger::reserve(int slot, uint64_t bytes) {
  if (slot < 0 || slot >= kMaxDevices) return bytes == 0;
  Slot& s = slots_[slot];
  uint64_t cur = s.used.load(std::memory_order_relaxed);
  do {
    // Written as a subtraction so that huge requests cannot overflow.
    if (bytes > s.limit || cur > s.limit - bytes) return false;
  } while (!s.used.compare_exchange_weak(cur, cur + bytes, std::memory_order_acq_rel,
                                         std::memory_order_relaxed));
  return true;
}

void LocalLedger::release(int slot, uint64_t bytes) {
  if (slot < 0 || slot >= kMaxDevices) return;
  slots_[slot].used.fetch_sub(bytes, std::memory_order_acq_rel);
}

uint64_t LocalLedger::used(int slot) const {
  if (slot < 0 || slot >= kMaxDevices) return 0;
  return slots_[slot].used.load(std::memory_order_acquire);
}

uint64_t LocalLedger::limit(int slot) const {
  if (slot < 0 || slot >= kMaxDevices) return kUnlimited;
  return slots_[slot].limit;
}

void LocalLedger::reset() {
  for (Slot& s : slots_) s.used.store(0, std::memory_order_relaxed);
}

}  // namespace vgpu::hook
