#include "log.h"

#include <sys/time.h>
#include <time.h>

#include <cstdarg>
#include <cstdio>

namespace vgpu::sched {
namespace {

LogLevel g_level = LogLevel::kInfo;
const char* g_program = "vgpud";

void vlog(LogLevel l, const char* tag, const char* fmt, va_list ap) {
  if (l > g_level) return;
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  localtime_r(&tv.tv_sec, &t);
  char msg[1024];
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  std::fprintf(stderr, "%04d-%02d-%02d %02d:%02d:%02d.%03ld %s %s: %s\n", t.tm_year + 1900, t.tm_mon + 1,
               t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<long>(tv.tv_usec / 1000), g_program, tag, msg);
}

}  // namespace

void set_log_level(LogLevel l) { g_level = l; }
void set_log_program(const char* name) { g_program = name; }

#define VGPU_LOG_FN(name, level, tag) \
  void name(const char* fmt, ...) {   \
    va_list ap;                       \
    va_start(ap, fmt);                \
    vlog(level, tag, fmt, ap);        \
    va_end(ap);                       \
  }
VGPU_LOG_FN(log_error, LogLevel::kError, "error")
VGPU_LOG_FN(log_warn, LogLevel::kWarn, "warning")
VGPU_LOG_FN(log_info, LogLevel::kInfo, "info")
VGPU_LOG_FN(log_debug, LogLevel::kDebug, "debug")
#undef VGPU_LOG_FN

}  // namespace vgpu::sched
