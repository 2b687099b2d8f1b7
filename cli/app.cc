#include "app.h"

#include "commands.h"
#include "context.h"

namespace vgpu::cli {

namespace {

void add_global_options(CLI::App& app, Context& ctx) {
  app.add_option("--socket", ctx.socket, "vgpud's admin socket")
      ->type_name("PATH")
      ->envname("VGPU_ADMIN_SOCKET")
      ->default_str(kDefaultAdminSocket);
  app.add_option("-o,--output", ctx.format, "output format: table, json or yaml (default table)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"table", "json", "yaml"}));
}

// "vgpuctl tenant create": the deepest subcommand the parser selected.
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

}  // namespace

int run_vgpuctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Context ctx;
  ctx.out = &out;
  ctx.err = &err;
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

  std::vector<std::string> full{"vgpuctl"};
  full.insert(full.end(), args.begin(), args.end());
  auto argv = as_argv(full);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    return ctx.usage_error(selected_path(app), e.what());
  }
  if (!ctx.action) return ctx.usage_error(selected_path(app), "a subcommand is required");
  return ctx.action();
}

}  // namespace vgpu::cli
