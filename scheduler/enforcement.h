// Enforcement: carries out the Backstop's verdicts on vgpud's event loop.
//
// Every `poll_interval` it reads each managed GPU's processes (memory and
// engine time, from NVML through a GpuReader), builds an Observation from
// vgpud's own records (registered pids, quotas, lease time held), and acts:
// `kill` sends SIGKILL through a pidfd (never to pid 1 or vgpud itself),
// `report` only records. Each action is logged, counted for metrics by
// (reason, action, tenant) and kept in a bounded list of events for
// `vgpuctl events`. Time a tenant used the GPU without its lease is charged
// to it (HookServer::charge_penalty).
//
// Optionally an eBPF probe on the driver library (bpf: auto|required|off)
// reports processes calling the driver as it happens; its first sighting of
// an unregistered process starts the grace period at once, and an allocation
// by one triggers an immediate poll instead of waiting for the next.
//
// Not thread-safe: runs on vgpud's event loop; the admin API reads events and
// counters through EventLoop::call.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "backstop.h"
#include "event_loop.h"
#include "gpu_inventory.h"
#include "hook_server.h"
#include "tenant_registry.h"

namespace vgpu::sched {

// What a GPU's processes do, per poll. `last_seen_us` is the reader's cursor
// for utilization samples (NVML's lastSeenTimeStamp).
class GpuReader {
 public:
  virtual ~GpuReader() = default;
  virtual std::vector<ProcessSample> read(int gpu_index, uint64_t* last_seen_us) = 0;
};
// The real one: NVML (libnvidia-ml.so.1: the driver's on a node, simgpu's in tests).
std::unique_ptr<GpuReader> make_nvml_reader();

struct EnforcementEvent {
  uint64_t unix_ns = 0;     // wall-clock time of the action
  Reason reason = Reason::kOverQuota;
  std::string action;       // "killed", "reported", "kill_failed"
  int32_t pid = 0;
  std::string tenant;       // empty: unregistered process
  int gpu = -1;
  std::string detail;
};

class DriverProbe;

class Enforcement {
 public:
  Enforcement(EventLoop& loop, TenantRegistry& tenants, HookServer& hooks, const EnforcementConfig& cfg,
              std::unique_ptr<GpuReader> reader);
  ~Enforcement();
  // Attaches the eBPF probe to `driver_library` per cfg.bpf; an error only
  // when bpf is "required" and it cannot be loaded (the message says why).
  Result<bool> start_probe(const std::string& driver_library);
  void set_config(const EnforcementConfig& cfg);

  // A revoked holder that kept the lease past the deadline (HookServer).
  void lease_overrun(int32_t pid, int tenant, int gpu, uint64_t overrun_ns);
  // Runs one poll now (tests; an eBPF allocation sighting).
  void poll();

  const std::deque<EnforcementEvent>& events() const { return events_; }
  // (reason, action, tenant) -> count, for metrics.
  const std::map<std::tuple<std::string, std::string, std::string>, uint64_t>& counts() const { return counts_; }
  const std::map<int32_t, uint64_t>& unmanaged() const { return backstop_.unmanaged(); }
  // Physical memory per GPU of a process at the last poll (0 if none).
  uint64_t physical(int32_t pid, int gpu) const;
  const std::string& probe_status() const { return probe_status_; }

 private:
  void act(const Verdict& v);
  void on_probe();
  void forget_exited();
  void record(const Verdict& v, const std::string& action);
  void arm();
  Observation observe(uint64_t now);

  EventLoop& loop_;
  TenantRegistry& tenants_;
  HookServer& hooks_;
  EnforcementConfig cfg_;
  std::unique_ptr<GpuReader> reader_;
  Backstop backstop_;
  int timer_fd_ = -1;
  uint64_t last_poll_ns_ = 0;
  std::vector<uint64_t> last_seen_us_;
  std::map<std::pair<int, int>, uint64_t> held_before_;  // (tenant, gpu) -> cumulative held ns
  std::vector<std::map<int32_t, uint64_t>> physical_;    // per GPU: pid -> bytes
  std::deque<EnforcementEvent> events_;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> counts_;
  std::unique_ptr<DriverProbe> probe_;
  std::string probe_status_ = "off";
};

// The CUDA driver library processes on this node load (libcuda.so.1), found
// the way the dynamic loader would: LD_LIBRARY_PATH, then the usual library
// directories. Empty if none.
std::string find_driver_library();

// Whether `pid` is a system process of the allowlist (by /proc/<pid>/comm or
// the absolute path of /proc/<pid>/exe).
bool process_allowlisted(int32_t pid, const std::vector<std::string>& allowlist);

}  // namespace vgpu::sched
