// `vgpuctl status`: the node as vgpud sees it (GetStatus).
#include "admin_json.h"
#include "commands.h"

namespace vgpu::cli {

namespace {

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

// The waiters without the lease holder: a tenant holding the lease may still
// have launches queued on it, but it is not waiting for the GPU.
std::string waiters(const Json& g) {
  std::string holder = g["lease_holder"].get<std::string>(), out;
  for (const auto& w : g["waiting"])
    if (w.get<std::string>() != holder) out += (out.empty() ? "" : ",") + w.get<std::string>();
  return out;
}

// Quotas that add up to more than the GPU's memory cannot all be met at once.
std::string quotas_text(const Json& g) {
  uint64_t quotas = g["memory_quota_bytes"].get<uint64_t>(), total = g["memory_total_bytes"].get<uint64_t>();
  return human_bytes(quotas) + (total > 0 && quotas > total ? " (overcommit)" : "");
}

}  // namespace

std::string status_table(const Json& s, const TableStyle& style) {
  // vgpud reports e.g. "vgpud 0.1 (protocol 1)"; a bare number gets the name.
  std::string version = s["version"].get<std::string>();
  if (version.rfind("vgpud", 0) != 0) version = "vgpud " + version;
  std::string head = version + "  up " +
                     human_duration(s["uptime_ns"].get<uint64_t>()) + "  tenants " + s["tenants"].dump() +
                     "  processes " + s["processes"].dump() + "\n\n";
  Table t{{"GPU", "NAME", "UUID", "USED", "TOTAL", "ALLOCATED", "QUOTAS", "BUSY", "LEASE", "WAITING"}, {}};
  for (const auto& g : s["gpus"]) {
    t.rows.push_back({g["index"].dump(), g["name"].get<std::string>(),
                      table_uuid(g["uuid"].get<std::string>(), style),
                      human_bytes(g["memory_used_bytes"].get<uint64_t>()),
                      human_bytes(g["memory_total_bytes"].get<uint64_t>()),
                      human_bytes(g["memory_allocated_bytes"].get<uint64_t>()), quotas_text(g),
                      human_percent(g["busy_fraction"].get<double>()),
                      or_dash(g["lease_holder"].get<std::string>()), or_dash(waiters(g))});
  }
  return (style.headers ? head : "") + render_table(t, style);
}

void add_status_command(CLI::App& app, Context& ctx) {
  CLI::App* cmd = app.add_subcommand("status", "Show vgpud's version, uptime and every GPU's memory and use");
  cmd->callback([&ctx] {
    ctx.action = [&ctx] {
      return ctx.reply(ctx.client().status(), status_json,
                       [](const Json& doc, const TableStyle& st) { return status_table(doc, st); });
    };
  });
}

}  // namespace vgpu::cli
