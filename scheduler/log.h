// vgpud's log, through spdlog: one line per event on stderr.
//
// Format: on a terminal or in a file, "2026-12-01T11:23:55.372Z vgpud info: ..."
// (UTC, ISO 8601). Under systemd (JOURNAL_STREAM set: stderr goes to the
// journal) no timestamp — journald adds its own — and each line starts with
// its syslog priority ("<3>" error ... "<7>" debug), which journald reads as
// the entry's priority (sd-daemon(3)).
// Levels: --log-level, else VGPUD_LOG_LEVEL, else info; names error, warn,
// info, debug (warning is accepted for warn).
//
// Thread-safety: every function may be called from any thread.
#pragma once

#include <optional>
#include <string>

namespace vgpu::sched {

enum class LogLevel { kError, kWarn, kInfo, kDebug };
// The program name in each line (default "vgpud"; the device plugin sets its
// own). Call before the first log line.
void set_log_program(const char* name);
void set_log_level(LogLevel l);
LogLevel log_level();
// "error", "warn"/"warning", "info", "debug"; nullopt for anything else.
std::optional<LogLevel> parse_log_level(const std::string& name);
// Chooses the journald or the timestamped format from the environment
// (JOURNAL_STREAM); called once by main(), and by tests to re-read it.
void configure_log_output();
void log_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace vgpu::sched
