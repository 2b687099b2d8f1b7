// A scheduler-benchmark scenario: a set of tenants, each one vgpu-workload
// with its own arguments, run the same way twice on the same kind of
// simulated node:
//  - native: every workload straight on simgpu (no LD_PRELOAD, no vgpud); the
//    simulated engine time-slices the processes itself, as a GPU without MPS;
//  - vgpu: every workload under LD_PRELOAD=libvgpu.so with its tenant's token,
//    beside a real vgpud configured with the tenants' requests and priorities.
// The figures compared are the aggregate throughput (sum of the tenants'
// work_share: kernel time completed / wall time) and each tenant's share of
// that aggregate.
//
// Functions here start processes and block until they end (duration + 60 s at
// most); not thread-safe (they use the process environment through SimNode).
#pragma once

#include <string>
#include <vector>

namespace vgpu::bench {

struct TenantSpec {
  std::string name;                 // also the label and token suffix
  int request = 0;                  // compute request, percent
  bool high = false;                // priority: high
  bool backlogged = true;           // counts in the share check (always has work queued)
  std::vector<std::string> args;    // vgpu-workload arguments (not --duration/--json/--label)
};

struct Scenario {
  std::string name;
  std::string description;
  std::vector<TenantSpec> tenants;
  double ratio_target = 0.99;       // vgpu aggregate / native aggregate, at least
  double share_points = 1.0;        // |achieved - configured| of backlogged tenants, at most
  bool check_high_wait = false;     // report and check the high-priority tenant's sync wait p99
};

struct TenantResult {
  bool ok = false;
  double work_share = 0;
  double sync_wait_p99_ms = 0;
};

struct RunResult {
  bool ok = false;
  std::vector<TenantResult> tenants;
  double aggregate = 0;             // sum of work_share
};

// Scheduler settings of vgpud for the vgpu runs.
struct VgpuSettings {
  int quantum_ms = 10;
  int inflight_cap = 16;
};

RunResult run_native(const Scenario& s, int duration_s);
RunResult run_vgpu(const Scenario& s, int duration_s, const VgpuSettings& v);

// Configured share (percent) of backlogged tenant i among the backlogged
// tenants: its request over the sum of their requests.
double configured_share(const Scenario& s, size_t i);
// Achieved share (percent) of backlogged tenant i among the backlogged tenants.
double achieved_share(const Scenario& s, const RunResult& r, size_t i);
// Largest |achieved - configured| over the backlogged tenants, in points.
double max_share_error(const Scenario& s, const RunResult& r);

// The standard scenarios of issue 11, by name: sat2, sat4, sat8 (1 ms kernels,
// saturating), batch8 (1 ms kernels, a synchronize every 8), sync2ms and
// sync200us (a synchronize after each kernel), small20us (20 us kernels, 32
// queued per stream), mixed (an inference tenant at high priority beside two
// saturating training tenants).
std::vector<Scenario> standard_scenarios();

}  // namespace vgpu::bench
