// Shell completion scripts for vgpuctl, generated from its CLI11 command
// tree (command_tree.h), so that every command and option vgpuctl accepts is
// completed and nothing else: `vgpuctl completion bash|zsh`. Both complete
// subcommands, options (the global ones anywhere), the choices of options
// such as -o and --priority, and file names for PATH/DIR values.
// Pure functions; thread-safe on a built app.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace vgpu::cli {

std::string bash_completion(const CLI::App& root);
std::string zsh_completion(const CLI::App& root);

}  // namespace vgpu::cli
