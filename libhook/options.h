// The hook's options: every environment variable libvgpu.so reads is defined
// once, in kOptions (options.cc), with its name, aliases, default and meaning.
// docs/configuration.md lists the same table and a test checks they agree.
//
// HookConfig is the parsed result. Parsing is a pure function of an
// environment lookup so it can be unit-tested; the hook reads the real
// environment once, lazily, on the first CUDA call that needs it.
// Thread-safety: all functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vgpu::hook {

constexpr int kMaxDevices = 64;
constexpr uint64_t kUnlimited = UINT64_MAX;

struct OptionSpec {
  const char* name;         // e.g. "VGPU_MEMORY_LIMIT"; "_<i>" marks a per-device family
  const char* alias;        // accepted alias (HAMi-core's name), or ""
  const char* default_text; // shown in the docs
  const char* meaning;      // one line for the docs
};

// The option table, in documentation order.
const std::vector<OptionSpec>& option_table();

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

struct HookConfig {
  // Per physical device index (NVML index): quota in bytes, kUnlimited if none.
  uint64_t memory_limit[kMaxDevices];
  bool charge_managed = true;
  uint64_t context_overhead = 0;  // bytes charged per context
  LogLevel log_level = LogLevel::kWarn;
  // Daemon mode (docs/configuration.md): vgpud's socket and this process's token.
  std::string socket = "/run/vgpu/vgpud.sock";
  bool socket_set = false;        // VGPU_SOCKET given explicitly
  std::string token;              // VGPU_TOKEN
  bool fail_closed = true;        // VGPU_FAIL_MODE (default closed)
  uint64_t register_timeout_ns = 5'000'000'000;  // VGPU_REGISTER_TIMEOUT
  // Problems found while parsing, each to be reported once on stderr.
  std::vector<std::string> problems;
};

// Looks up an environment variable; returns nullptr when unset.
using EnvLookup = std::function<const char*(const char*)>;

// Parses the options. A malformed memory limit fails closed: the affected
// device(s) get a quota of 0 bytes, so every allocation there is refused
// (see docs/configuration.md for why). Other malformed values keep their
// default. Every problem is described in `problems`.
HookConfig parse_config(const EnvLookup& env);

// Parses a log level name ("error", "warn", "info", "debug") or HAMi-core's
// numeric LIBCUDA_LOG_LEVEL (0..4). Returns false if malformed.
bool parse_log_level(const char* text, LogLevel* out);

}  // namespace vgpu::hook
