// Man pages (roff, man(7) macros) for vgpuctl, generated from the commands'
// own help text (command_tree.h), so that they never drift from --help:
// vgpuctl(1) lists the global options and every command with its options;
// vgpuctl-<command>(1), e.g. vgpuctl-tenant-create(1), has one command each.
// Pure functions; thread-safe on a built app.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace vgpu::cli {

// vgpuctl(1): everything on one page.
std::string man_page(const CLI::App& root, const std::string& version);
// vgpuctl-tenant-create(1) for path {"tenant", "create"}.
std::string command_man_page(const CLI::App& root, const std::vector<std::string>& path, const std::string& version);
// "vgpuctl-tenant-create.1"
std::string man_file_name(const std::vector<std::string>& path);

// Text made safe for roff: backslashes, hyphens (\-, so that they copy as
// ASCII) and a leading '.' or '\'' that roff would read as a request.
std::string roff_escape(const std::string& text);

}  // namespace vgpu::cli
