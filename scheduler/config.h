// vgpud's configuration: the YAML file given with --config, validated key by
// key. Every error names the file, the line and the key path, e.g.
//   /etc/vgpu/vgpud.yaml:12: tenants[1].memory: '8Gx' is not a size ...
// Thread-safety: values; load_config is reentrant.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gpu_inventory.h"
#include "vgpu/result.h"

namespace YAML {
class Node;
}

namespace vgpu::sched {

enum class Priority { kLow = 0, kNormal = 1, kHigh = 2 };
const char* priority_name(Priority p);
std::optional<Priority> parse_priority(const std::string& s);

// What vgpud does to a process that uses more GPU memory than its tenant may,
// or that holds GPU memory without being registered: end it, or only report it.
enum class EnforcePolicy { kKill, kReport };
const char* policy_name(EnforcePolicy p);
std::optional<EnforcePolicy> parse_policy(const std::string& s);

struct TenantConfig {
  std::string name;
  std::string token;              // empty: generated and persisted on first start
  Priority priority = Priority::kNormal;
  uint64_t memory = 0;            // bytes per GPU the tenant uses
  double request = 0;             // guaranteed share of GPU time, 0..1
  double limit = 1;               // hard cap on GPU time, 0..1
  std::vector<std::string> devices;  // NVML indexes or UUIDs; empty: all
  std::optional<EnforcePolicy> enforcement;  // unset: the node's enforcement.policy
  // GPU UUID -> quota there, overriding `memory` on that GPU (allocation
  // tenants, allocation_record.h; never set from the config file).
  std::map<std::string, uint64_t> device_memory;
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

// The node's enforcement of memory quotas and GPU access (`enforcement:`).
struct EnforcementConfig {
  EnforcePolicy policy = EnforcePolicy::kKill;
  uint64_t poll_interval_ns = 200'000'000;     // NVML backstop poll, 10ms..10s
  uint64_t tolerance = 64ull << 20;            // bytes above a quota tolerated per GPU
  uint64_t context_allowance = 512ull << 20;   // per process on a GPU: its context, not in the quota
  // Least bytes the hook charges each context to the quota (it charges what
  // it measures the driver took, if more). Published in TenantControl.
  uint64_t context_overhead = 0;
  uint64_t grace_ns = 500'000'000;             // unregistered holder of GPU memory
  uint64_t startup_grace_ns = 10'000'000'000;  // re-registration after vgpud starts
  // Process names or absolute executable paths never acted on. A name is
  // compared with comm, which the kernel truncates to 15 characters: only a
  // name's first 15 characters can match.
  std::vector<std::string> allowlist{"nvidia-persistenced", "nv-hostengine", "dcgm-exporter"};
  bool overcommit = false;                     // quotas above a GPU's memory allowed
  uint64_t revoke_deadline_ns = 100'000'000;   // revoked lease taken by force after
  std::string bpf = "auto";                    // auto | off | required
  bool bpf_launches = false;                   // also probe launch entry points (a trap per launch)
};

// Limits on what the hook socket accepts (`limits:`).
struct LimitsConfig {
  uint64_t hello_timeout_ns = 1'000'000'000;
  uint32_t max_connections = 4096;
  uint32_t max_connections_per_uid = 256;
  uint32_t messages_per_second = 5000;  // per connection
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

// Rules shared with runtime changes (admin API): a valid tenant name, finite
// compute shares within 0..1 (request <= limit), and the sum of requests on
// any device not above 100%.
Result<bool> validate_tenant(const TenantConfig& t);
Result<bool> validate_requests(const std::vector<TenantConfig>& tenants);
// A token is 16..127 printable ASCII characters, no whitespace or control
// characters (kMinTokenLength, kMaxTokenLength).
inline constexpr size_t kMinTokenLength = 16;
inline constexpr size_t kMaxTokenLength = 127;
Result<bool> validate_token(const std::string& token);
// The tenant's memory quota fits in every GPU it may use (its devices, or all
// of `gpus`), unless `overcommit`. Device entries that do not resolve are left
// to the registry to report. Needs the inventory, so the daemon calls it.
Result<bool> validate_quota(const TenantConfig& t, const std::vector<Gpu>& gpus, bool overcommit);

// For the state store, which stores tenants in the config file's shape.
// Reads one tenant mapping with the config file's rules; `extra_keys` are
// allowed besides the tenant keys (left to the caller), `min_token` relaxes
// the token length for tokens stored by older versions. Never throws.
struct TenantReadOptions {
  std::vector<std::string> extra_keys;
  size_t min_token = kMinTokenLength;
  bool require_all = false;  // every key present (a state file writes them all)
};
Result<TenantConfig> read_tenant_yaml(const YAML::Node& n, const std::string& file, const std::string& key_path,
                                      const TenantReadOptions& opt);
// Fails on the first mapping (at any depth) that has a key twice, naming
// file:line:key path (YAML parsers keep the first silently). Never throws.
Result<bool> check_duplicate_keys(const YAML::Node& root, const std::string& file);
// Fails on the first byte sequence that is not UTF-8 (YAML is UTF-8 text;
// yaml-cpp reads such bytes as they are but writes them back replaced, so a
// value would change between a save and the next load), naming file:line.
Result<bool> check_utf8(const std::string& text, const std::string& file);

}  // namespace vgpu::sched
