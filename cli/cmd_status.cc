// `vgpuctl status`: the node as vgpud sees it (GetStatus).
#include "admin_json.h"
#include "commands.h"

namespace vgpu::cli {

namespace {

std::string join(const Json& list, const char* sep) {
  std::string out;
  for (const auto& s : list) out += (out.empty() ? "" : sep) + s.get<std::string>();
  return out;
}

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

}  // namespace

std::string status_table(const Json& s) {
  // vgpud reports e.g. "vgpud 0.1 (protocol 1)"; a bare number gets the name.
  std::string version = s["version"].get<std::string>();
  if (version.rfind("vgpud", 0) != 0) version = "vgpud " + version;
  std::string head = version + "  up " +
                     human_duration(s["uptime_ns"].get<uint64_t>()) + "  tenants " + s["tenants"].dump() +
                     "  processes " + s["processes"].dump() + "\n\n";
  Table t{{"GPU", "NAME", "UUID", "USED", "TOTAL", "ALLOCATED", "QUOTAS", "BUSY", "LEASE", "WAITING"}, {}};
  for (const auto& g : s["gpus"]) {
    t.rows.push_back({g["index"].dump(), g["name"].get<std::string>(), g["uuid"].get<std::string>(),
                      human_bytes(g["memory_used_bytes"].get<uint64_t>()),
                      human_bytes(g["memory_total_bytes"].get<uint64_t>()),
                      human_bytes(g["memory_allocated_bytes"].get<uint64_t>()),
                      human_bytes(g["memory_quota_bytes"].get<uint64_t>()),
                      human_percent(g["busy_fraction"].get<double>()),
                      or_dash(g["lease_holder"].get<std::string>()), or_dash(join(g["waiting"], ","))});
  }
  return head + render_table(t);
}

void add_status_command(CLI::App& app, Context& ctx) {
  CLI::App* cmd = app.add_subcommand("status", "Show vgpud's version, uptime and every GPU's memory and use");
  cmd->callback([&ctx] {
    ctx.action = [&ctx] { return ctx.reply(ctx.client().status(), status_json, status_table); };
  });
}

}  // namespace vgpu::cli
