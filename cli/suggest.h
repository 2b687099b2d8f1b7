// Unknown commands, found before CLI11 parses (CLI11 would only say "The
// following arguments were not expected" or "A subcommand is required"):
// the first word at a level of the command tree that names no subcommand
// there, with the subcommands it is close to (edit distance), as kubectl
// does: "unknown command 'stauts' for 'vgpuctl' (did you mean 'status'?)".
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace vgpu::cli {

// Levenshtein distance (insertions, deletions, substitutions; a swap of two
// neighbours counts once, as typing errors go).
size_t edit_distance(const std::string& a, const std::string& b);

// The names among `candidates` within distance 2 of `word` (or starting
// with it), closest first.
std::vector<std::string> suggestions(const std::string& word, const std::vector<std::string>& candidates);

struct UnknownCommand {
  std::string parent;  // "vgpuctl tenant"
  std::string word;    // "lsit"
  std::vector<std::string> suggestions;
  std::string message() const;  // "unknown command 'lsit' for 'vgpuctl tenant' (did you mean 'list'?)"
};

// Walks `args` (without the program name) down the subcommands of `root`,
// skipping options and their values; nullopt when every command word is known.
std::optional<UnknownCommand> find_unknown_command(const CLI::App& root, const std::vector<std::string>& args);

// The names of `app`'s subcommands, in the order they were added.
std::vector<std::string> subcommand_names(const CLI::App& app);
std::vector<const CLI::App*> subcommands_of(const CLI::App& app);

}  // namespace vgpu::cli
