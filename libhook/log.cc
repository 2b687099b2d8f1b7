#include "log.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>

namespace vgpu::hook {
namespace {

// Before the configuration is read, warnings and errors are shown.
std::atomic<int> g_level{static_cast<int>(LogLevel::kWarn)};
thread_local bool t_in_log = false;

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kInfo: return "info";
    default: return "debug";
  }
}

}  // namespace

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool log_enabled(LogLevel level) {
  return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

bool log_budget(std::atomic<int>* site) {
  int n = site->fetch_add(1, std::memory_order_relaxed);
  if (n == kWarnCap) log_message(LogLevel::kWarn, "further messages of this kind are suppressed");
  return n < kWarnCap;
}

void log_message(LogLevel level, const char* fmt, ...) {
  if (t_in_log) return;  // re-entered (e.g. a signal handler): drop rather than recurse
  t_in_log = true;
  char buf[1024];
  int n = std::snprintf(buf, sizeof buf, "[vgpu %d] %s: ", static_cast<int>(getpid()), level_name(level));
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && n < static_cast<int>(sizeof buf)) n += std::vsnprintf(buf + n, sizeof buf - n, fmt, ap);
  va_end(ap);
  if (n >= static_cast<int>(sizeof buf)) n = sizeof buf - 1;
  if (n > 0) {
    buf[n++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, buf, static_cast<size_t>(n));
    (void)ignored;
  }
  t_in_log = false;
}

}  // namespace vgpu::hook
