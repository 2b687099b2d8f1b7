// What every vgpuctl command shares: the global options (--socket, -o), the
// output streams, and the action chosen while parsing. Commands register
// themselves on the CLI11 app (commands.h) and set `action` in their parse
// callback; run_vgpuctl runs it after parsing succeeded. Not thread-safe.
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "admin_client.h"
#include "output.h"
#include "vgpu/result.h"

namespace vgpu::cli {

// Exit codes: documented in docs/cli.md.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // vgpud unreachable, refused or rejected the request
inline constexpr int kExitUsage = 2;    // bad command line, detected before contacting vgpud

inline constexpr char kDefaultAdminSocket[] = "/run/vgpu/vgpud-admin.sock";

struct Context {
  std::string socket = kDefaultAdminSocket;
  std::string format = "table";
  bool no_headers = false;  // --no-headers
  bool verbose = false;     // -v: debug lines on stderr (log.h)
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  // Whether `out` is a terminal (then `top` redraws the screen and fits its
  // width); false for pipes, files and the unit tests' string streams.
  bool out_is_tty = false;
  std::function<int()> action;

  Format output_format() const { return parse_format(format).value_or(Format::kTable); }
  TableStyle table_style() const { return TableStyle{output_format() == Format::kWide, !no_headers}; }
  AdminClient client() const { return AdminClient(socket); }

  // Prints `doc` in the chosen format and returns kExitOk.
  int print(const Json& doc, const TableText& to_table) const;
  // Prints "vgpuctl: <message>" on stderr and returns kExitFailure.
  int fail(const std::string& message) const;
  // Prints the error and where to find the usage; returns kExitUsage.
  int usage_error(const std::string& command_path, const std::string& message) const;

  // The common shape of a command: a call's answer, turned into the JSON model.
  template <class T, class ToJson>
  int reply(const Result<T>& answer, ToJson to_json, const TableText& to_table) const {
    if (!answer) return fail(answer.error());
    return print(to_json(*answer), to_table);
  }
};

}  // namespace vgpu::cli
