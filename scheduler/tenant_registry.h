// TenantRegistry: the tenants vgpud enforces, each with its shared memory
// (tenant_shm.h: a control block only vgpud writes, and a ledger the tenant's
// processes write) that its processes map. Tenants come from the config file
// and from runtime changes; limits are written into the control block, so a
// change takes effect in every process at its next allocation.
// Not thread-safe: owned by vgpud's event loop.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "gpu_inventory.h"
#include "vgpu/result.h"
#include "vgpu/tenant_shm.h"

namespace vgpu::sched {

struct Tenant {
  int id = 0;                       // stable for the daemon's lifetime
  TenantConfig config;
  std::vector<bool> allowed;        // per GPU index
  int control_fd = -1;              // sealed: tenants can only map it read-only
  int ledger_fd = -1;
  TenantShm shm;                    // vgpud's writable mappings of both
  bool slot_taken[kShmMaxProcs] = {};  // vgpud's own record table (never read back from tenants)
  bool deleted = false;
  ~Tenant();
  TenantControl& control() { return *shm.ctl; }
  // A tenant-written ledger value, made safe to show (see clamp_reported).
  uint64_t reported_used(int gpu) const;
  uint64_t reported_used(int gpu, int slot) const;
  uint64_t reported_denied(int gpu) const;
  uint64_t reported_wait_ns(int gpu) const;
  uint64_t limit(int gpu) const { return shm.ctl->devices[gpu].limit.load(std::memory_order_relaxed); }
};

class TenantRegistry {
 public:
  // `context_overhead`: the floor of each context's charge, published to
  // every tenant's control block (enforcement.context_overhead).
  explicit TenantRegistry(std::vector<Gpu> gpus, uint64_t context_overhead = 0)
      : gpus_(std::move(gpus)), context_overhead_(context_overhead) {}

  // Adds a tenant (its token must be set). Fails on a duplicate name or token,
  // an unknown device, or when the shared memory cannot be created.
  Result<Tenant*> add(const TenantConfig& t);
  // Applies a changed definition (memory, compute, priority, devices, token).
  Result<Tenant*> update(const TenantConfig& t);
  // Removes a tenant; its processes lose their registration.
  bool remove(const std::string& name);

  Tenant* by_name(const std::string& name);
  Tenant* by_id(int id);
  Tenant* by_token(const std::string& token);
  std::vector<Tenant*> all();
  const std::vector<Gpu>& gpus() const { return gpus_; }
  // A new floor (a reload), written to every tenant's control block at once.
  // The hook reads it whenever a context is created, so every process,
  // registered or not yet, charges at least the new floor for each context
  // it creates from now on; a context that exists keeps the charge it was
  // made with, and gives back exactly that when destroyed.
  void set_context_overhead(uint64_t bytes);
  uint64_t context_overhead() const { return context_overhead_; }

 private:
  Result<std::vector<bool>> resolve_devices(const TenantConfig& t) const;
  void write_limits(Tenant* t) const;

  std::vector<Gpu> gpus_;
  uint64_t context_overhead_ = 0;
  std::map<int, std::unique_ptr<Tenant>> tenants_;
  int next_id_ = 1;
};

// A new random token: 32 hex characters from the kernel's random source.
std::string generate_token();

}  // namespace vgpu::sched
