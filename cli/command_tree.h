// vgpuctl's command tree as data, read from the CLI11 app itself, for the
// generators that must never drift from it: shell completion (completion.h)
// and man pages (manpage.h). Pure functions; thread-safe on a built app.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace vgpu::cli {

struct OptionInfo {
  std::vector<std::string> names;  // {"-o", "--output"}; a positional: {"NAME"}
  std::string value;               // "FORMAT"; empty for a flag
  std::vector<std::string> choices;  // from an IsMember check: {"table", "wide", ...}
  bool path = false;                 // its value is a file or directory (PATH, DIR)
  bool required = false;
  std::string description;
};

// The named options of `app` itself (not its parents'), help included.
std::vector<OptionInfo> named_options(const CLI::App& app);
// Its positional arguments ("NAME").
std::vector<OptionInfo> positionals(const CLI::App& app);

// Every command below `root`, depth first, as paths: {"status"},
// {"tenant"}, {"tenant", "list"}, ...
std::vector<std::vector<std::string>> command_paths(const CLI::App& root);
// The subcommand of `root` at `path` (root itself for an empty path).
const CLI::App* command_at(const CLI::App& root, const std::vector<std::string>& path);

std::string join(const std::vector<std::string>& words, const std::string& sep);

}  // namespace vgpu::cli
