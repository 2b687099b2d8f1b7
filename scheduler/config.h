// vgpud's configuration: the YAML file given with --config, validated key by
// key. Every error names the file, the line and the key path, e.g.
//   /etc/vgpu/vgpud.yaml:12: tenants[1].memory: '8Gx' is not a size ...
// Thread-safety: values; load_config is reentrant.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vgpu/result.h"

namespace vgpu::sched {

enum class Priority { kLow = 0, kNormal = 1, kHigh = 2 };
const char* priority_name(Priority p);
std::optional<Priority> parse_priority(const std::string& s);

enum class EnforcePolicy { kKill, kReport };

// The backstop and its policy (docs/security.md).
struct EnforcementConfig {
  EnforcePolicy policy = EnforcePolicy::kKill;
  uint64_t poll_interval_ns = 200'000'000;
  uint64_t tolerance = 64ull << 20;           // per tenant and GPU, above the quota
  uint64_t context_allowance = 512ull << 20;  // per process on a GPU: its context, not in the quota
  uint64_t grace_ns = 500'000'000;
  uint64_t startup_grace_ns = 10'000'000'000;
  std::vector<std::string> allowlist{"nvidia-persistenced", "nv-hostengine", "dcgm-exporter"};
  bool overcommit = false;
  uint64_t revoke_deadline_ns = 100'000'000;
  std::string bpf = "auto";
};

struct LimitsConfig {
  uint64_t hello_timeout_ns = 1'000'000'000;
  uint32_t max_connections = 4096;
  uint32_t max_connections_per_uid = 256;
  uint32_t messages_per_second = 5000;
};

struct TenantConfig {
  std::string name;
  std::string token;              // empty: generated and persisted on first start
  Priority priority = Priority::kNormal;
  uint64_t memory = 0;            // bytes per GPU the tenant uses
  double request = 0;             // guaranteed share of GPU time, 0..1
  double limit = 1;               // hard cap on GPU time, 0..1
  std::vector<std::string> devices;  // NVML indexes or UUIDs; empty: all
  std::optional<EnforcePolicy> enforcement;  // overrides enforcement.policy
};

struct SchedulerConfig {
  uint64_t quantum_ns = 10'000'000;
  uint64_t window_ns = 1'000'000'000;    // sliding window for shares
  uint32_t inflight_cap = 16;            // launches per stream queued per lease
  uint64_t drain_timeout_ns = 2'000'000'000;
  // While others wait, a holder that launched nothing for this long gives the
  // lease back (work conservation for bursty tenants).
  uint64_t idle_check_ns = 2'000'000;
};

struct Config {
  std::string path;                // the file it came from
  std::string socket = "/run/vgpu/vgpud.sock";
  std::string admin_socket = "/run/vgpu/vgpud-admin.sock";
  std::string admin_group;         // group allowed on the admin socket besides root
  std::string metrics;             // "127.0.0.1:9400"; empty: off
  std::string state_dir = "/var/lib/vgpu";
  SchedulerConfig scheduler;
  EnforcementConfig enforcement;
  LimitsConfig limits;
  std::vector<TenantConfig> tenants;
};

// Loads and validates `path`. Fails with "FILE:LINE: KEY: problem".
Result<Config> load_config(const std::string& path);
// Parses YAML text (for tests); `name` stands for the file in messages.
Result<Config> parse_config(const std::string& text, const std::string& name);

// Rules shared with runtime changes (admin API): a valid tenant name, and the
// sum of requests on any device not above 100%.
Result<bool> validate_tenant(const TenantConfig& t);
Result<bool> validate_requests(const std::vector<TenantConfig>& tenants);

}  // namespace vgpu::sched
