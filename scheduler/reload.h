// Applying a changed configuration file to a running vgpud (SIGHUP), and the
// rules that decide, at start and at reload, whether the file or a runtime
// change (vgpuctl, persisted in state_dir) defines a tenant.
//
//   - A tenant changed or created through the admin API keeps its runtime
//     definition; the file's definition of it is reported as not applied
//     until `vgpuctl tenant reset NAME` returns it to the file.
//   - A file tenant deleted at run time stays deleted; reported likewise.
//   - Other file tenants follow the file: added, changed (limits, shares,
//     priority, devices, token) or removed at once, their processes told.
//   - Node-wide settings apply live, from the reload on, without breaking
//     anything in flight (docs/operations.md "Reloading the configuration"):
//     the backstop's (enforcement.policy, poll_interval, tolerance,
//     context_allowance, grace, startup_grace, allowlist, overcommit),
//     enforcement.context_overhead (TenantRegistry::set_context_overhead),
//     enforcement.revoke_deadline and scheduler.* (HookServer::set_scheduler),
//     limits.* (Admission::set_limits).
//   - What is bound or attached once (socket, admin_socket, admin_group,
//     metrics, state_dir, enforcement.bpf/bpf_launches) takes effect at the
//     next start; a change to one is reported, never half-applied.
// A reload is all or nothing: a file that does not parse, or whose tenants
// with the runtime changes break a guarantee (requests over 100 %, a quota
// above a GPU), changes nothing and is reported.
//
// Thread-safety: loop thread only (it changes the daemon's tenants).
#pragma once

#include <string>
#include <vector>

#include "config.h"

namespace vgpu::sched {

struct ReloadReport {
  std::vector<std::string> applied;    // "tenant 'x' updated: memory 8Gi -> 16Gi", ...
  std::vector<std::string> conflicts;  // file definitions a runtime change overrides
  std::vector<std::string> restart;    // keys bound at start that changed: applied at the next start
};

// The node-wide keys whose values differ between `running` and `file`, as
// "key: old -> new" lines.
std::vector<std::string> restart_only_changes(const Config& running, const Config& file);

// The scheduler.* and limits.* keys that differ (all applied live), as
// "key: old -> new" lines.
std::vector<std::string> live_node_changes(const Config& running, const Config& file);

// The enforcement keys a reload applies live (all but bpf, bpf_launches), as
// "key: old -> new" lines, and the running configuration with those keys
// taken from `file`.
std::vector<std::string> live_enforcement_changes(const EnforcementConfig& running, const EnforcementConfig& file);
EnforcementConfig with_live_enforcement(const EnforcementConfig& running, const EnforcementConfig& file);

// What changed in a tenant's definition, "memory 8Gi -> 16Gi, request 30% -> 40%";
// empty when nothing did. Tokens are never printed (only "token changed").
std::string describe_tenant_change(const TenantConfig& before, const TenantConfig& after);

}  // namespace vgpu::sched
