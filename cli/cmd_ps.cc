// `vgpuctl ps [--tenant NAME]`: the processes registered with vgpud.
#include "admin_json.h"
#include "commands.h"

namespace vgpu::cli {

// One row per process and GPU; a process without GPU memory gets one row.
std::string processes_table(const Json& processes) {
  Table t{{"PID", "TENANT", "GPU", "MEMORY", "LEASE"}, {}};
  for (const auto& p : processes) {
    std::string pid = p["pid"].dump(), tenant = p["tenant"].get<std::string>();
    if (p["gpus"].empty()) t.rows.push_back({pid, tenant, "-", "-", "-"});
    for (const auto& g : p["gpus"])
      t.rows.push_back({pid, tenant, g["index"].dump(), human_bytes(g["memory_bytes"].get<uint64_t>()),
                        g["lease"].get<std::string>()});
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
