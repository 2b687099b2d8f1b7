// HookCore: the policy state behind the exported wrappers — configuration,
// the memory ledger, the device map and the registries of live charges.
//
// Created on first use by a wrapper (never in a library constructor, so a
// process that never touches CUDA pays nothing), never destroyed (wrappers
// may run in other threads during exit). In a child after fork() it forgets
// every charge: the child owns no device memory of its parent.
// Thread-safety: all methods are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "allocation_registry.h"
#include "device_map.h"
#include "memory_ledger.h"
#include "options.h"
#include "pool_charges.h"
#include "shm_ledger.h"

namespace vgpu::hook {

class HookCore {
 public:
  static HookCore& get();

  const HookConfig& config() const { return config_; }
  // The ledger in force: process-local (standalone) or the tenant's (vgpud).
  MemoryLedger& ledger() { return *active_.load(std::memory_order_acquire); }
  // Registers with vgpud if this process should and has not yet (first use,
  // or the child after fork()). Cheap when nothing is to be done.
  void ensure_daemon();
  bool daemon_mode() const { return daemon_mode_; }
  DeviceMap& devices() { return devices_; }

  AllocationRegistry& pointers() { return pointers_; }   // CUdeviceptr
  AllocationRegistry& vmm() { return vmm_; }             // CUmemGenericAllocationHandle
  AllocationRegistry& arrays() { return arrays_; }       // CUarray, CUmipmappedArray
  AllocationRegistry& contexts() { return contexts_; }   // CUcontext: its own memory
  AllocationRegistry& modules() { return modules_; }     // CUmodule, CUlibrary: their globals
  AllocationRegistry& limits() { return limits_; }       // CUcontext: cuCtxSetLimit memory
  PoolCharges& pools() { return pools_; }                 // CUmemoryPool reservations

  // The least a context is charged (bytes; api_context.cc charges what the
  // driver took if more). Daemon mode: vgpud's enforcement.context_overhead
  // (the last value seen while vgpud is unreachable, 0 before the first);
  // VGPU_CONTEXT_OVERHEAD is ignored there. Standalone: VGPU_CONTEXT_OVERHEAD.
  uint64_t context_floor();

  // Slot of the calling thread's current context's device, -1 if none.
  int current_slot();
  // The calling thread's current context as a registry owner (Charge::ctx), 0 if none.
  uint64_t current_context();
  // After the driver destroyed context `ctx` (cuCtxDestroy, a primary reset
  // or last release): returns the charge of everything it held — linear,
  // managed and graph memory, arrays, module globals, cuCtxSetLimit
  // memory, and whatever pools no longer keep
  // (pool charges are settled to RESERVED_MEM_CURRENT). Its own overhead
  // charge is the caller's (api_context.cc).
  void release_context(uint64_t ctx);

  // Reserves `bytes` on `slot` for `api`. When the quota would be exceeded,
  // first trims the process's tracked pools on `slot` (their idle memory)
  // and tries once more. On refusal logs (capped) and returns false: the
  // caller answers CUDA_ERROR_OUT_OF_MEMORY. A slot < 0 (device unknown) is
  // not charged and always succeeds.
  bool charge(int slot, uint64_t bytes, const char* api);
  // What this process itself has charged on `slot` (not its tenant's total).
  uint64_t own_charge(int slot);
  void uncharge(int slot, uint64_t bytes);
  // Takes the record of `key` from `reg` and returns its charge.
  void uncharge_record(AllocationRegistry& reg, uint64_t key);

 private:
  HookCore();
  void after_fork_child();
  static void atfork_child();

  void start_daemon();

  HookConfig config_;
  LocalLedger ledger_;
  ShmLedger shm_ledger_;
  std::atomic<MemoryLedger*> active_{nullptr};
  bool daemon_mode_ = false;
  std::atomic<bool> daemon_pending_{false};
  std::mutex daemon_mu_;
  DeviceMap devices_;
  AllocationRegistry pointers_, vmm_, arrays_, contexts_, modules_, limits_;
  std::atomic<uint64_t> daemon_floor_{0};  // last enforcement.context_overhead seen
  PoolCharges pools_;
};

}  // namespace vgpu::hook
