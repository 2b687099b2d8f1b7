// Command-line parsing shared by the benchmark programs (CLI11).
//
// Every benchmark exits 2 on bad arguments (scripts and docs rely on it) and
// 0 after --help; CLI11's own exit codes differ per error kind, so each
// program parses through parse_or_exit instead of CLI11_PARSE.
//
// Contract: parse_or_exit returns only when argv parsed; otherwise it prints
// the help (--help, to stdout, exit 0) or the problem followed by the usage
// (stderr, exit 2) and exits. usage_error does the same for a problem found
// after parsing (a value CLI11 could not check). Not thread-safe; call from
// main before any thread starts. Benchmarks are programs, not libraries, so
// exiting here is their edge.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

namespace vgpu::bench {

inline constexpr int kExitBadArguments = 2;

// Accepts a whole decimal number >= min; the message names the bound, which
// CLI::PositiveNumber's (a double range) does not in readable form.
inline CLI::Validator at_least(long long min) {
  return CLI::Validator(
      [min](const std::string& v) -> std::string {
        long long n = 0;
        if (CLI::detail::lexical_cast(v, n) && n >= min) return {};
        return "expected a whole number >= " + std::to_string(min) + ", got '" + v + "'";
      },
      "");
}

[[noreturn]] inline void usage_error(const CLI::App& app, const std::string& problem) {
  std::cerr << app.get_name() << ": " << problem << "\n" << app.help();
  std::exit(kExitBadArguments);
}

inline void parse_or_exit(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::exit(app.exit(e, std::cout, std::cerr));
  } catch (const CLI::ParseError& e) {
    usage_error(app, e.what());
  }
}

}  // namespace vgpu::bench
