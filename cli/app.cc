#include "app.h"

#include <unistd.h>

#include <iostream>

#include "commands.h"
#include "context.h"
#include "log.h"
#include "suggest.h"
#include "vgpu_version.h"

namespace vgpu::cli {

namespace {

void add_global_options(CLI::App& app, Context& ctx) {
  app.add_option("--socket", ctx.socket, "vgpud's admin socket")
      ->type_name("PATH")
      ->envname("VGPU_ADMIN_SOCKET")
      ->default_str(kDefaultAdminSocket);
  app.add_option("-o,--output", ctx.format,
                 "output format: table, wide (more columns, full UUIDs), json or yaml (default table)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"table", "wide", "json", "yaml"}));
  app.add_flag("--no-headers", ctx.no_headers, "tables: print data rows only, no headers or summary lines");
  app.add_flag("-v,--verbose", ctx.verbose, "debug lines on stderr: the socket, each call and its duration");
  app.set_version_flag("--version", std::string("vgpuctl ") + VGPU_VERSION_STRING + " (revision " +
                                        VGPU_REVISION_STRING + ")",
                       "print vgpuctl's version and exit");
}

// The deepest subcommand the parser selected ("vgpuctl tenant create").
const CLI::App* selected(const CLI::App& app) {
  const CLI::App* at = &app;
  while (!at->get_subcommands().empty()) at = at->get_subcommands().front();
  return at;
}

std::string selected_path(const CLI::App& app) {
  std::string path = app.get_name();
  const CLI::App* at = &app;
  while (!at->get_subcommands().empty()) {
    at = at->get_subcommands().front();
    path += " " + at->get_name();
  }
  return path;
}

std::vector<char*> as_argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return argv;
}

// `vgpuctl` or `vgpuctl tenant` alone: the usage of what was typed (the
// commands it offers) on stderr, and a usage error. The root's help() shows
// the selected subcommand's, with its full name ("vgpuctl tenant").
int missing_command(const CLI::App& app, const Context& ctx) {
  *ctx.err << app.help() << "vgpuctl: a command is required\n";
  return kExitUsage;
}

}  // namespace

int run_vgpuctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Context ctx;
  ctx.out = &out;
  ctx.err = &err;
  ctx.out_is_tty = &out == &std::cout && isatty(STDOUT_FILENO);
  CLI::App app("Manage vgpud: tenants, quotas, processes and live GPU usage.", "vgpuctl");
  app.fallthrough();
  app.require_subcommand(1);
  add_global_options(app, ctx);
  add_status_command(app, ctx);
  add_tenant_commands(app, ctx);
  add_ps_command(app, ctx);
  add_top_command(app, ctx);
  add_token_commands(app, ctx);
  add_events_command(app, ctx);
  add_help_commands(app, ctx);
  app.footer("Run 'vgpuctl COMMAND --help' for a command's options. Docs: docs/cli.md, man vgpuctl.");

  if (auto unknown = find_unknown_command(app, args)) return ctx.usage_error(unknown->parent, unknown->message());

  std::vector<std::string> full{"vgpuctl"};
  full.insert(full.end(), args.begin(), args.end());
  auto argv = as_argv(full);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::RequiredError& e) {
    // require_subcommand's error names no command; show what there is.
    if (!subcommands_of(*selected(app)).empty() && !ctx.action) return missing_command(app, ctx);
    return ctx.usage_error(selected_path(app), e.what());
  } catch (const CLI::ParseError& e) {
    return ctx.usage_error(selected_path(app), e.what());
  }
  if (!ctx.action) return missing_command(app, ctx);
  configure_log(err, ctx.verbose);
  log().debug("vgpuctl {} (revision {}), admin socket {}", VGPU_VERSION_STRING, VGPU_REVISION_STRING, ctx.socket);
  return ctx.action();
}

}  // namespace vgpu::cli
