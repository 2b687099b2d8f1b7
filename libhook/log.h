// Logging of libvgpu.so: one line per message on stderr, prefixed "[vgpu pid]".
// Safe in any process: no allocation (formats into a stack buffer and write()s),
// a thread-local re-entry guard (a message logged while logging is dropped),
// and each warning site is capped so a hot loop cannot flood stderr.
// Thread-safety: all functions are thread-safe.
#pragma once

#include <atomic>

#include "options.h"

namespace vgpu::hook {

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void log_message(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// A call site's counter: the first kWarnCap messages are printed, then one
// "further messages suppressed" line, then nothing.
constexpr int kWarnCap = 5;
bool log_budget(std::atomic<int>* site);

}  // namespace vgpu::hook

#define VGPU_LOG(level, ...)                                                             \
  do {                                                                                   \
    if (::vgpu::hook::log_enabled(level)) ::vgpu::hook::log_message(level, __VA_ARGS__); \
  } while (0)

// A warning printed at most kWarnCap times from this call site.
#define VGPU_WARN_CAPPED(...)                                                    \
  do {                                                                           \
    static std::atomic<int> vgpu_site_{0};                                       \
    if (::vgpu::hook::log_enabled(::vgpu::hook::LogLevel::kWarn) &&              \
        ::vgpu::hook::log_budget(&vgpu_site_))                                   \
      ::vgpu::hook::log_message(::vgpu::hook::LogLevel::kWarn, __VA_ARGS__);     \
  } while (0)
