#include "hook_core.h"

#include <pthread.h>

#include <cstdlib>

#include "log.h"
#include "real_driver.h"
#include "vgpu/units.h"

namespace vgpu::hook {
namespace {

using CuCtxGetDevice = int (*)(int*);

HookConfig load_config() {
  HookConfig cfg = parse_config([](const char* name) { return std::getenv(name); });
  set_log_level(cfg.log_level);
  for (const std::string& p : cfg.problems) VGPU_LOG(LogLevel::kError, "%s", p.c_str());
  return cfg;
}

}  // namespace

HookCore::HookCore() : config_(load_config()), ledger_(config_.memory_limit) {
  pthread_atfork(nullptr, nullptr, &HookCore::atfork_child);
}

HookCore& HookCore::get() {
  static HookCore* core = new HookCore();
  return *core;
}

void HookCore::atfork_child() { get().after_fork_child(); }

void HookCore::after_fork_child() {
  ledger_.reset();
  devices_.reset();
  pointers_.clear();
  vmm_.clear();
  arrays_.clear();
  contexts_.clear();
}

int HookCore::current_slot() {
  static auto get_device = reinterpret_cast<CuCtxGetDevice>(real_cuda_symbol("cuCtxGetDevice"));
  int dev = -1;
  if (!get_device || get_device(&dev) != 0) return -1;
  return devices_.slot_of_ordinal(dev);
}

bool HookCore::charge(int slot, uint64_t bytes, const char* api) {
  if (slot < 0 || ledger_.reserve(slot, bytes)) return true;
  VGPU_WARN_CAPPED("%s: %s refused on GPU %d: %s in use of a %s quota", api, format_bytes(bytes).c_str(), slot,
                   format_bytes(ledger_.used(slot)).c_str(), format_bytes(ledger_.limit(slot)).c_str());
  return false;
}

void HookCore::uncharge(int slot, uint64_t bytes) {
  if (slot >= 0 && bytes > 0) ledger_.release(slot, bytes);
}

void HookCore::uncharge_record(AllocationRegistry& reg, uint64_t key) {
  Charge c;
  if (reg.take(key, &c)) uncharge(c.slot, c.bytes);
}

}  // namespace vgpu::hook
