#include "log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

namespace vgpu::sched {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::string g_program = "vgpud";

// A journald priority prefix per level, as sd-daemon.h's SD_ERR... spell them.
class JournalPrefix final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const char* p = "<6>";
    switch (msg.level) {
      case spdlog::level::critical:
      case spdlog::level::err: p = "<3>"; break;
      case spdlog::level::warn: p = "<4>"; break;
      case spdlog::level::info: p = "<6>"; break;
      default: p = "<7>"; break;
    }
    dest.append(p, p + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JournalPrefix>(); }
};

std::shared_ptr<spdlog::logger> make_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("vgpud", sink);
  logger->set_level(spdlog::level::trace);  // vgpud filters by its own level first
  logger->flush_on(spdlog::level::trace);   // every line reaches the file or journal at once
  return logger;
}

void apply_format(spdlog::logger& l) {
  const char* journal = std::getenv("JOURNAL_STREAM");
  std::unique_ptr<spdlog::pattern_formatter> formatter;
  if (journal && *journal) {
    formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JournalPrefix>('*').set_pattern("%*%l: %v");
  } else {
    formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ " + g_program + " %l: %v");
  }
  l.set_formatter(std::move(formatter));
}

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto made = make_logger();
    apply_format(*made);
    return made;
  }();
  return *l;
}

spdlog::level::level_enum to_spdlog(LogLevel l) {
  switch (l) {
    case LogLevel::kError: return spdlog::level::err;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kDebug: return spdlog::level::debug;
  }
  return spdlog::level::info;
}

void vlog(LogLevel l, const char* fmt, va_list ap) {
  if (l > g_level.load(std::memory_order_relaxed)) return;
  char msg[2048];
  int n = std::vsnprintf(msg, sizeof msg, fmt, ap);
  size_t len = n < 0 ? 0 : std::min(static_cast<size_t>(n), sizeof msg - 1);
  logger().log(to_spdlog(l), spdlog::string_view_t(msg, len));
}

}  // namespace

void configure_log_output() { apply_format(logger()); }

void set_log_program(const char* name) {
  g_program = name ? name : "vgpud";
  apply_format(logger());
}

void set_log_level(LogLevel l) { g_level.store(l, std::memory_order_relaxed); }
LogLevel log_level() { return g_level.load(std::memory_order_relaxed); }

std::optional<LogLevel> parse_log_level(const std::string& name) {
  if (name == "error") return LogLevel::kError;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "info") return LogLevel::kInfo;
  if (name == "debug") return LogLevel::kDebug;
  return std::nullopt;
}

#define VGPU_LOG_FN(name, level)    \
  void name(const char* fmt, ...) { \
    va_list ap;                     \
    va_start(ap, fmt);              \
    vlog(level, fmt, ap);           \
    va_end(ap);                     \
  }
VGPU_LOG_FN(log_error, LogLevel::kError)
VGPU_LOG_FN(log_warn, LogLevel::kWarn)
VGPU_LOG_FN(log_info, LogLevel::kInfo)
VGPU_LOG_FN(log_debug, LogLevel::kDebug)
#undef VGPU_LOG_FN

}  // namespace vgpu::sched
