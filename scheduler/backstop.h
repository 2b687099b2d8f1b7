// Backstop: vgpud's check of reality from outside the tenants' processes.
//
// The shim inside a process enforces quotas and leases at zero cost, but a
// hostile program can bypass it (no LD_PRELOAD, dlmopen, RTLD_DEEPBIND, a
// rolled-back ledger, direct driver calls). The backstop compares what the
// GPU really does, as NVML reports it per process, with vgpud's own records:
//  * kOverQuota: the processes of a tenant physically hold more on a GPU than
//    its quota + `tolerance` + `context_allowance` per process (the driver's
//    per-context memory, which the quota does not count) — the largest holder
//    of that tenant on that GPU is acted on;
//  * kUnregistered: a process holds memory on (or uses) a managed GPU without
//    being registered, for longer than `grace` (`startup_grace` after vgpud
//    starts, so processes of a previous vgpud can re-register), counted from
//    its first driver call when the eBPF probe saw it; allowlisted system
//    processes are never touched. A driver call alone is not acted on: the
//    process may use a GPU this vgpud does not manage;
//  * kUnleasedLaunch: a tenant's processes kept the GPU busy for clearly more
//    than the time its lease was held (launches that bypassed the gate); the
//    excess is charged to the tenant (it is not granted until paid back), and
//    the busiest process is acted on;
//  * kLeaseOverrun: reported by HookServer when a revoked holder did not give
//    the lease back by the deadline (taken by force, charged).
// Every decision is an Action with the policy in force (kill or report); the
// caller carries it out, logs and counts it.
//
// Pure logic with time passed in; no I/O. Not thread-safe (vgpud's loop).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config.h"

namespace vgpu::sched {

enum class Reason { kOverQuota, kUnregistered, kUnleasedLaunch, kLeaseOverrun };
const char* reason_name(Reason r);  // "over_quota", "unregistered", ...

struct ProcessSample {
  int32_t pid = 0;
  uint64_t memory = 0;   // bytes held on the GPU (NVML)
  uint64_t busy_ns = 0;  // engine time used since the previous poll (NVML utilization)
};

// What vgpud knows of a tenant, from its own records only.
struct TenantFacts {
  std::string name;
  EnforcePolicy policy = EnforcePolicy::kKill;
  std::vector<uint64_t> quota;    // per GPU; 0 where not allowed
  std::vector<uint64_t> held_ns;  // per GPU: lease held during the last interval
};

struct Observation {
  uint64_t now_ns = 0;
  uint64_t interval_ns = 0;                        // since the previous observation
  std::vector<std::vector<ProcessSample>> gpus;    // per GPU index
  std::map<int32_t, int> registered;               // pid -> tenant id
  std::map<int, TenantFacts> tenants;              // tenant id -> facts
};

struct Verdict {
  int32_t pid = 0;
  int tenant = -1;        // -1: unregistered
  int gpu = -1;
  Reason reason = Reason::kOverQuota;
  EnforcePolicy action = EnforcePolicy::kKill;
  bool act = true;          // false: only charge penalty_ns (no action, no event)
  uint64_t penalty_ns = 0;  // kUnleasedLaunch: time to charge to the tenant
  std::string detail;       // for the log and `vgpuctl events`
};

class Backstop {
 public:
  // `allowlisted(pid)` tells whether a process is a system process never acted on.
  Backstop(const EnforcementConfig& cfg, uint64_t start_ns, std::function<bool(int32_t)> allowlisted);
  void set_config(const EnforcementConfig& cfg) { cfg_ = cfg; }

  // Decides on one observation. A process acted on with kKill is not acted on
  // again (it is going away); with kReport, once per reason until it changes.
  std::vector<Verdict> evaluate(const Observation& o);
  // The eBPF probe saw `pid` call into the driver (at `now`).
  void saw_driver_call(int32_t pid, uint64_t now_ns);
  // Unregistered processes that use a GPU now (for `vgpuctl ps`): pid -> GPU memory.
  const std::map<int32_t, uint64_t>& unmanaged() const { return unmanaged_; }

 private:
  void check_unregistered(const Observation& o, std::vector<Verdict>* out);
  void check_quota(const Observation& o, std::vector<Verdict>* out);
  void check_leases(const Observation& o, std::vector<Verdict>* out);
  bool first_time(int32_t pid, Reason r, EnforcePolicy action);
  EnforcePolicy policy_of(const Observation& o, int tenant) const;

  EnforcementConfig cfg_;
  uint64_t start_ns_;
  std::function<bool(int32_t)> allowlisted_;
  std::map<int32_t, uint64_t> first_unregistered_;  // pid -> first seen unregistered on a GPU
  std::map<int32_t, uint64_t> driver_calls_;        // pid -> first eBPF sighting
  std::map<int32_t, uint64_t> unmanaged_;
  std::map<int32_t, std::set<Reason>> acted_;       // reported or killed, per reason
  struct LeaseWindow {
    struct Poll {
      uint64_t busy, held, interval;
    };
    std::deque<Poll> polls;
  };
  std::map<std::pair<int, int>, LeaseWindow> windows_;  // (tenant, gpu) -> recent polls
};

}  // namespace vgpu::sched
