// Daemon: vgpud assembled — configuration, GPUs, tenants (config file merged
// with the persisted state), the hook server, and the event loop — so that
// main() and tests build the same thing.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "allocation_record.h"
#include "config.h"
#include "reload.h"
#include "admin_server.h"
#include "enforcement.h"
#include "event_loop.h"
#include "hook_server.h"
#include "metrics.h"
#include "state_store.h"
#include "tenant_registry.h"

namespace vgpu::sched {

// The first GPU UUID of t.device_memory that is not among `gpus`.
std::optional<std::string> missing_gpu(const TenantConfig& t, const std::vector<Gpu>& gpus);

class Daemon {
 public:
  // Loads everything and binds the sockets. On failure returns an error
  // message for the operator; nothing is left half-started.
  static Result<std::unique_ptr<Daemon>> start(const Config& cfg);
  ~Daemon();
  void run() { loop_.run(); }
  void stop() { loop_.stop(); }
  EventLoop& loop() { return loop_; }
  TenantRegistry& tenants() { return *tenants_; }
  HookServer& hooks() { return *hooks_; }
  Enforcement& enforcement() { return *enforcement_; }
  // Persists the current tenants (after a runtime change).
  Result<bool> persist();

  // Runtime tenant changes (admin API). Each is validated like the config
  // file, applied at once to running processes, and persisted; a change that
  // cannot be persisted is undone. Loop thread only.
  Result<Tenant*> create_tenant(TenantConfig t);
  Result<Tenant*> update_tenant(const TenantConfig& t);
  Result<bool> delete_tenant(const std::string& name);
  Result<Tenant*> rotate_token(const std::string& name, const std::string& token);
  // Applies a re-read configuration file (SIGHUP); all or nothing, see
  // reload.h. Loop thread.
  Result<ReloadReport> reload(const Config& file);
  // Returns tenant `name` to its definition in the configuration file: undoes
  // its runtime changes (or its runtime deletion). Loop thread.
  Result<Tenant*> reset_tenant(const std::string& name);
  // File tenants whose definition a runtime change overrides, one line each
  // (logged at start and at every reload).
  std::vector<std::string> overridden_by_runtime(const std::vector<TenantConfig>& file) const;
  bool from_api(const std::string& name) const;

  // Allocation tenants (allocation_record.h). create_allocation validates
  // like create_tenant plus the allocation's own rules, creates the socket
  // directory and the tenant's own socket, and persists; on any failure
  // nothing is left (no tenant, no socket, no record). One that exists with
  // the same devices and quotas is returned as it is (*existed set), its
  // socket re-created if it was missing. delete_tenant removes an
  // allocation's socket and directory too. Loop thread only.
  Result<Tenant*> create_allocation(TenantConfig t, AllocationRecord r, bool* existed);
  const AllocationRecord* allocation(const std::string& name) const;
  // Replaces an allocation's labels (the socket root stays); validated and
  // persisted, undone if it cannot be persisted.
  Result<bool> set_allocation_record(const std::string& name, const AllocationRecord& r);
  const std::map<std::string, AllocationRecord>& allocations() const { return allocations_; }
  // An allocation of the state file whose GPU is not on this node: kept in the
  // state, not served, deleted only through delete_tenant.
  bool dormant(const std::string& name) const;
  // <directory of the hook socket>/tenants: where sockets go when the caller names no root.
  std::string default_socket_root() const;
  const Config& config() const { return cfg_; }
  uint64_t started_ns() const { return started_ns_; }

 private:
  Daemon() = default;
  Result<bool> load_tenants(const Config& cfg);
  // (Re-)creates the own socket of every allocation; failures are logged
  // (the tenant stays, ListAllocations shows it not listening).
  void open_allocation_sockets();
  Result<bool> open_allocation_socket(Tenant* t, const AllocationRecord& r);

  Config cfg_;
  EventLoop loop_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<TenantRegistry> tenants_;
  std::unique_ptr<HookServer> hooks_;
  std::unique_ptr<Enforcement> enforcement_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<Metrics> metrics_;
  std::vector<std::string> api_tenants_;  // names created or changed at run time
  std::vector<std::string> deleted_;      // file tenants deleted at run time
  std::map<std::string, AllocationRecord> allocations_;  // tenant name -> record
  std::vector<StoredTenant> dormant_;    // allocations whose GPU is missing (dormant())
  uint64_t started_ns_ = 0;
  Result<bool> check_requests(const TenantConfig& changed, bool removing);
  void apply_node_settings(const Config& file, const EnforcementConfig& before, ReloadReport* rep);
};

}  // namespace vgpu::sched
