#include "log.h"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>

namespace vgpu::cli {

namespace {

// Not registered in spdlog's global registry: unit tests run vgpuctl many
// times in one process, each with its own streams.
std::shared_ptr<spdlog::logger>& current() {
  static std::shared_ptr<spdlog::logger> logger =
      std::make_shared<spdlog::logger>("vgpuctl", std::make_shared<spdlog::sinks::null_sink_mt>());
  return logger;
}

}  // namespace

void configure_log(std::ostream& err, bool verbose) {
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(err, /*force_flush=*/true);
  auto logger = std::make_shared<spdlog::logger>("vgpuctl", sink);
  logger->set_pattern("%n %l: %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
  current() = logger;
}

spdlog::logger& log() { return *current(); }

}  // namespace vgpu::cli
