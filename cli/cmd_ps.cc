// `vgpuctl ps [--tenant NAME]`: the processes registered with vgpud.
#include "admin_json.h"
#include "commands.h"

namespace vgpu::cli {

namespace {

// A GPU the process neither holds memory on nor uses the lease of (the hook
// registers a process on every visible GPU): left out of the table.
bool unused(const Json& gpu) { return gpu["memory_bytes"].get<uint64_t>() == 0 && gpu["lease"] == "idle"; }

}  // namespace

// One row per process and GPU it uses; a process using none gets one row.
std::string processes_table(const Json& processes) {
  Table t{{"PID", "TENANT", "GPU", "MEMORY", "LEASE"}, {}};
  for (const auto& p : processes) {
    std::string pid = p["pid"].dump(), tenant = p["tenant"].get<std::string>();
    size_t rows = t.rows.size();
    for (const auto& g : p["gpus"])
      if (!unused(g))
        t.rows.push_back({pid, tenant, g["index"].dump(), human_bytes(g["memory_bytes"].get<uint64_t>()),
                          g["lease"].get<std::string>()});
    if (t.rows.size() == rows) t.rows.push_back({pid, tenant, "-", "0", "idle"});
  }
  return render_table(t);
}

void add_ps_command(CLI::App& app, Context& ctx) {
  CLI::App* cmd = app.add_subcommand("ps", "List the CUDA processes registered with vgpud");
  auto tenant = std::make_shared<std::string>();
  cmd->add_option("--tenant", *tenant, "only the processes of this tenant");
  cmd->callback([&ctx, tenant] {
    ctx.action = [&ctx, tenant] {
      return ctx.reply(
          ctx.client().processes(*tenant),
          [](const api::ListProcessesResponse& r) { return Json{{"processes", processes_json(r.processes())}}; },
          [](const Json& doc) { return processes_table(doc["processes"]); });
    };
  });
}

}  // namespace vgpu::cli
