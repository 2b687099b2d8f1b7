// vgpud's log: one line per event on stderr, with a level and a timestamp.
// VGPUD_LOG_LEVEL / --log-level choose error, warn, info (default) or debug.
#pragma once

namespace vgpu::sched {

enum class LogLevel { kError, kWarn, kInfo, kDebug };
void set_log_level(LogLevel l);
// The program name in each line (default "vgpud"; the device plugin sets its own).
void set_log_program(const char* name);
void log_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace vgpu::sched
