// `vgpuctl ps [--tenant NAME]`: the processes registered with vgpud and, for
// the whole node, the processes using a managed GPU without being registered
// (TENANT "(unmanaged)"). MEMORY is what a process's ledger reports, PHYSICAL
// what NVML saw at vgpud's last backstop poll.
#include "admin_json.h"
#include "commands.h"

namespace vgpu::cli {

namespace {

// A GPU the process neither holds memory on nor uses the lease of (the hook
// registers a process on every visible GPU): left out of the table.
bool unused(const Json& gpu) {
  return gpu["memory_bytes"].get<uint64_t>() == 0 && gpu.value("physical_bytes", uint64_t{0}) == 0 &&
         gpu["lease"] == "idle";
}

}  // namespace

// One row per process and GPU it uses; a process using none gets one row.
// Wide adds MANAGED (yes/no), for scripts that filter on it.
std::string processes_table(const Json& processes, const TableStyle& style) {
  Table t{{"PID", "TENANT", "GPU", "MEMORY", "PHYSICAL", "LEASE", "MANAGED"}, {}, {6}};
  for (const auto& p : processes) {
    // Documents from a vgpud older than the `managed` field list only managed processes.
    bool managed = p.value("managed", true);
    std::string pid = p["pid"].dump(), tenant = managed ? p["tenant"].get<std::string>() : "(unmanaged)";
    size_t rows = t.rows.size();
    for (const auto& g : p["gpus"])
      if (!managed || !unused(g))
        t.rows.push_back({pid, tenant, g["index"].dump(),
                          managed ? human_bytes(g["memory_bytes"].get<uint64_t>()) : "-",
                          human_bytes(g.value("physical_bytes", uint64_t{0})),
                          managed ? g["lease"].get<std::string>() : "-", managed ? "yes" : "no"});
    if (t.rows.size() == rows)
      t.rows.push_back({pid, tenant, "-", managed ? "0" : "-", "0", managed ? "idle" : "-", managed ? "yes" : "no"});
  }
  return render_table(t, style);
}

void add_ps_command(CLI::App& app, Context& ctx) {
  CLI::App* cmd = app.add_subcommand("ps", "List the CUDA processes registered with vgpud, and unmanaged ones");
  auto tenant = std::make_shared<std::string>();
  cmd->add_option("--tenant", *tenant, "only the processes of this tenant (no unmanaged ones)");
  cmd->callback([&ctx, tenant] {
    ctx.action = [&ctx, tenant] {
      return ctx.reply(
          ctx.client().processes(*tenant),
          [](const api::ListProcessesResponse& r) { return Json{{"processes", processes_json(r.processes())}}; },
          [](const Json& doc, const TableStyle& st) { return processes_table(doc["processes"], st); });
    };
  });
}

}  // namespace vgpu::cli
