// vgpuctl's diagnostics, through spdlog: with -v/--verbose, debug lines on
// the error stream ("vgpuctl debug: GetStatus on /run/vgpu/vgpud-admin.sock:
// OK in 1.2ms"); without it only warnings, and vgpuctl issues none today, so
// normal output is unchanged. Results and errors are not logged here: they
// are the command's output (context.h).
//
// Thread-safety: configure_log() is called once per run_vgpuctl, before any
// command runs; log() may then be used from any thread.
#pragma once

#include <memory>
#include <ostream>

#include <spdlog/spdlog.h>

namespace vgpu::cli {

// Sends the log to `err` (which must outlive the run), at debug level when
// `verbose`, else warn.
void configure_log(std::ostream& err, bool verbose);
// The logger; a no-op one before configure_log().
spdlog::logger& log();

}  // namespace vgpu::cli
