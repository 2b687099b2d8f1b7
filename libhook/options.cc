#include "options.h"

#include <cstdlib>
#include <strings.h>

#include <cstring>
#include <string>

#include "vgpu/units.h"

namespace vgpu::hook {

const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> table = {
      {"VGPU_MEMORY_LIMIT", "CUDA_DEVICE_MEMORY_LIMIT", "unlimited",
       "Device-memory quota of every GPU of the process (512Mi, 4Gi, 4g, plain bytes)."},
      {"VGPU_MEMORY_LIMIT_<i>", "CUDA_DEVICE_MEMORY_LIMIT_<i>", "VGPU_MEMORY_LIMIT",
       "Quota of unit <i>: the GPU with NVML index <i>, or with MIG the <i>-th unit (GPUs and MIG devices); "
       "overrides VGPU_MEMORY_LIMIT for it."},
      {"VGPU_CHARGE_MANAGED", "", "1",
       "1: cuMemAllocManaged is charged to the quota of the current device; 0: it is not."},
      {"VGPU_CONTEXT_OVERHEAD", "", "0",
       "Least bytes charged for each context (cuCtxCreate, first primary-context retain); the hook charges what it "
       "measures the driver took when that is more. Standalone only: ignored under vgpud "
       "(enforcement.context_overhead applies)."},
      {"VGPU_LOG_LEVEL", "LIBCUDA_LOG_LEVEL", "warn",
       "Messages on stderr: error, warn, info, debug (or HAMi-core's 0..4)."},
      {"VGPU_SOCKET", "", "/run/vgpu/vgpud.sock",
       "vgpud's hook socket. Set, or present at the default path: the process registers with vgpud."},
      {"VGPU_TOKEN", "", "(none)",
       "The tenant token vgpud issued; without a valid one vgpud refuses the process (no memory, no GPU time)."},
      {"VGPU_FAIL_MODE", "", "closed",
       "When vgpud cannot be reached: closed = no device memory and no GPU time until the process registers "
       "(calls wait up to VGPU_REGISTER_TIMEOUT, then fail); open = run under the standalone limits (and, once "
       "registered, the last known quota, ungated): an explicit, less safe choice."},
      {"VGPU_REGISTER_TIMEOUT", "", "5s",
       "Closed fail mode: how long an allocation or launch waits for the registration with vgpud before it "
       "fails (once this has passed, later calls fail at once until vgpud is back)."},
  };
  return table;
}

namespace {

// The value of `name`, or of `alias` when `name` is unset; nullptr if neither.
const char* lookup(const EnvLookup& env, const std::string& name, const std::string& alias,
                   std::string* used_name) {
  if (const char* v = env(name.c_str()); v && *v) {
    *used_name = name;
    return v;
  }
  if (const char* v = env(alias.c_str()); v && *v) {
    *used_name = alias;
    return v;
  }
  return nullptr;
}

// Reads one limit. A malformed value fails closed (0 bytes) and is reported.
bool read_limit(const EnvLookup& env, const std::string& suffix, uint64_t* out, HookConfig* cfg) {
  std::string used;
  const char* text = lookup(env, "VGPU_MEMORY_LIMIT" + suffix, "CUDA_DEVICE_MEMORY_LIMIT" + suffix, &used);
  if (!text) return false;
  auto bytes = parse_bytes(text);
  if (bytes.ok()) {
    *out = bytes.value();
  } else {
    *out = 0;
    cfg->problems.push_back(used + ": " + bytes.error() +
                            "; refusing every allocation it covers (fail closed)");
  }
  return true;
}

bool parse_flag(const char* text, bool* out) {
  if (!std::strcmp(text, "1") || !std::strcmp(text, "true") || !std::strcmp(text, "yes")) *out = true;
  else if (!std::strcmp(text, "0") || !std::strcmp(text, "false") || !std::strcmp(text, "no")) *out = false;
  else return false;
  return true;
}

void read_misc(const EnvLookup& env, HookConfig* cfg) {
  if (const char* v = env("VGPU_CHARGE_MANAGED"); v && *v && !parse_flag(v, &cfg->charge_managed))
    cfg->problems.push_back(std::string("VGPU_CHARGE_MANAGED: '") + v + "' is not 0 or 1; using 1");
  if (const char* v = env("VGPU_CONTEXT_OVERHEAD"); v && *v) {
    auto bytes = parse_bytes(v);
    if (bytes.ok()) cfg->context_overhead = bytes.value();
    else cfg->problems.push_back("VGPU_CONTEXT_OVERHEAD: " + bytes.error() + "; using 0");
  }
  if (const char* v = env("VGPU_SOCKET"); v && *v) {
    cfg->socket = v;
    cfg->socket_set = true;
  }
  if (const char* v = env("VGPU_TOKEN"); v && *v) cfg->token = v;
  if (const char* v = env("VGPU_FAIL_MODE"); v && *v) {
    // Only an exact "open" loosens enforcement; a typo keeps the default.
    if (std::strcmp(v, "closed") != 0 && std::strcmp(v, "open") != 0)
      cfg->problems.push_back(std::string("VGPU_FAIL_MODE: '") + v + "' is not open or closed; using closed");
    cfg->fail_closed = std::strcmp(v, "open") != 0;
  }
  if (const char* v = env("VGPU_REGISTER_TIMEOUT"); v && *v) {
    auto ns = parse_duration_ns(v);
    if (ns.ok()) cfg->register_timeout_ns = ns.value();
    else cfg->problems.push_back("VGPU_REGISTER_TIMEOUT: " + ns.error() + "; using 5s");
  }
  std::string used;
  if (const char* v = lookup(env, "VGPU_LOG_LEVEL", "LIBCUDA_LOG_LEVEL", &used);
      v && !parse_log_level(v, &cfg->log_level))
    cfg->problems.push_back(used + ": '" + v + "' is not error, warn, info, debug or 0..4; using warn");
}

}  // namespace

bool parse_log_level(const char* text, LogLevel* out) {
  static const struct { const char* name; LogLevel level; } kNames[] = {
      {"error", LogLevel::kError}, {"warn", LogLevel::kWarn},  {"warning", LogLevel::kWarn},
      {"info", LogLevel::kInfo},   {"debug", LogLevel::kDebug}, {"0", LogLevel::kError},
      {"1", LogLevel::kWarn},      {"2", LogLevel::kInfo},      {"3", LogLevel::kDebug},
      {"4", LogLevel::kDebug}};
  for (const auto& n : kNames)
    if (!strcasecmp(text, n.name)) {
      *out = n.level;
      return true;
    }
  return false;
}

HookConfig parse_config(const EnvLookup& env) {
  HookConfig cfg;
  uint64_t all = kUnlimited;
  read_limit(env, "", &all, &cfg);
  for (int i = 0; i < kMaxDevices; ++i) {
    cfg.memory_limit[i] = all;
    read_limit(env, "_" + std::to_string(i), &cfg.memory_limit[i], &cfg);
  }
  read_misc(env, &cfg);
  return cfg;
}

}  // namespace vgpu::hook
