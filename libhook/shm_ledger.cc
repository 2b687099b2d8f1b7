#include "shm_ledger.h"

#include <mutex>

namespace vgpu::hook {

ShmLedger::ShmLedger() {
  for (int i = 0; i < kMaxDevices; ++i) {
    dev_[i] = -1;
    mine_[i].store(0);
  }
}

void ShmLedger::attach(TenantShm shm, int proc, const int (&dev_of_slot)[kMaxDevices]) {
  std::unique_lock<std::shared_mutex> g(mu_);
  shm_ = shm;
  proc_ = proc;
  uint64_t adopt[kShmMaxDevices] = {};
  for (int i = 0; i < kMaxDevices; ++i) {
    dev_[i] = dev_of_slot[i];
    if (dev_[i] >= 0 && dev_[i] < kShmMaxDevices) adopt[dev_[i]] += mine_[i].load();
  }
  tenant_shm_attach(shm_, proc_, adopt);
}

void ShmLedger::seed(int slot, uint64_t bytes) {
  if (slot >= 0 && slot < kMaxDevices) mine_[slot].store(bytes);
}

void ShmLedger::reset() {
  std::unique_lock<std::shared_mutex> g(mu_);
  shm_ = TenantShm{};
  proc_ = -1;
  for (int i = 0; i < kMaxDevices; ++i) mine_[i].store(0);
}

bool ShmLedger::reserve(int slot, uint64_t bytes) {
  std::shared_lock<std::shared_mutex> g(mu_);
  int d = dev(slot);
  if (!shm_.led || d < 0) return bytes == 0;
  if (!tenant_shm_reserve(shm_, proc_, d, bytes)) return false;
  mine_[slot].fetch_add(bytes, std::memory_order_relaxed);
  return true;
}

void ShmLedger::release(int slot, uint64_t bytes) {
  std::shared_lock<std::shared_mutex> g(mu_);
  int d = dev(slot);
  if (slot < 0 || slot >= kMaxDevices) return;
  mine_[slot].fetch_sub(bytes, std::memory_order_relaxed);
  if (shm_.led && d >= 0) tenant_shm_release(shm_, proc_, d, bytes);
}

uint64_t ShmLedger::used(int slot) const {
  std::shared_lock<std::shared_mutex> g(mu_);
  int d = dev(slot);
  return shm_.led && d >= 0 ? tenant_shm_used(shm_, d) : 0;
}

uint64_t ShmLedger::limit(int slot) const {
  std::shared_lock<std::shared_mutex> g(mu_);
  int d = dev(slot);
  return shm_.ctl && d >= 0 ? shm_.ctl->devices[d].limit.load(std::memory_order_relaxed) : 0;
}

uint64_t ShmLedger::mine(int slot) const {
  return slot >= 0 && slot < kMaxDevices ? mine_[slot].load(std::memory_order_relaxed) : 0;
}

}  // namespace vgpu::hook
