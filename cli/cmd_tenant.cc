// `vgpuctl tenant list|get|create|update|delete|reset`: tenants and their quotas.
#include <memory>

#include "admin_json.h"
#include "commands.h"
#include "tenant_flags.h"

namespace vgpu::cli {

namespace {

std::string devices_text(const Json& devices) {
  if (devices.empty()) return "all";
  std::string out;
  for (const auto& d : devices) out += (out.empty() ? "" : ",") + d.get<std::string>();
  return out;
}

uint64_t memory_used(const Json& tenant) {
  uint64_t sum = 0;
  for (const auto& g : tenant["gpus"]) sum += g["memory_used_bytes"].get<uint64_t>();
  return sum;
}

uint64_t allocations_denied(const Json& tenant) {
  uint64_t sum = 0;
  for (const auto& g : tenant["gpus"]) sum += g["allocations_denied"].get<uint64_t>();
  return sum;
}

// Memory held above the quota: possible after the quota was lowered below
// the tenant's use (existing allocations stay, new ones are denied).
bool over_quota(const Json& gpu) {
  return gpu["memory_used_bytes"].get<uint64_t>() > gpu["memory_limit_bytes"].get<uint64_t>();
}

std::string used_text(uint64_t used, bool over) { return human_bytes(used) + (over ? " (over quota)" : ""); }

// The tenant's use, summed over its GPUs, marked if it is over its quota on any.
std::string tenant_used_text(const Json& tenant) {
  bool over = false;
  for (const auto& g : tenant["gpus"]) over = over || (g["allowed"].get<bool>() && over_quota(g));
  return used_text(memory_used(tenant), over);
}

// "1234,5678": the pids of `tenant`'s processes that use GPU `index`.
std::string pids_on(const Json& processes, const std::string& tenant, int index) {
  std::string out;
  if (!processes.is_array()) return out;
  for (const auto& p : processes) {
    if (p["tenant"].get<std::string>() != tenant) continue;
    for (const auto& g : p["gpus"])
      if (g["index"].get<int>() == index && (g["memory_bytes"].get<uint64_t>() > 0 || g["lease"] != "idle")) {
        out += (out.empty() ? "" : ",") + p["pid"].dump();
        break;
      }
  }
  return out;
}

std::string lease_state(const Json& g) {
  if (g["holds_lease"].get<bool>()) return "holding";
  return g["waiting"].get<bool>() ? "waiting" : "idle";
}

std::string enforcement_text(const std::string& policy) { return policy.empty() ? "default (node)" : policy; }

// A tenant's name as the required positional argument of a subcommand.
void add_name(CLI::App* cmd, std::string* name) {
  cmd->add_option("NAME", *name, "tenant name")->required();
}

}  // namespace

// The detail view of one tenant: its settings, then its GPUs. The settings
// are printed whatever --no-headers says: their labels are not a header row.
std::string tenant_detail(const Json& t, const TableStyle& style, const Json& processes) {
  Table kv{{"Name:", t["name"].get<std::string>()}, {}};
  kv.rows = {{"Priority:", t["priority"].get<std::string>()},
             {"Memory:", human_bytes(t["memory_bytes"].get<uint64_t>()) + " per GPU"},
             {"Request:", human_percent(t["compute_request"].get<double>())},
             {"Limit:", human_percent(t["compute_limit"].get<double>())},
             {"Devices:", devices_text(t["devices"])},
             {"Enforcement:", enforcement_text(t.value("enforcement", std::string()))},
             {"Source:", t["source"].get<std::string>()},
             {"Processes:", t["processes"].dump()}};
  if (t.contains("kubernetes")) {
    const Json& k = t["kubernetes"];
    std::string who = k.value("namespace", std::string()) + "/" + k.value("pod", std::string()) + "/" +
                      k.value("container", std::string());
    kv.rows.push_back({"Kubernetes:", who == "//" ? "(not known yet)" : who});
  }
  return render_table(kv) + "\n" + tenant_gpus_table(Json::array({t}), style, processes);
}

std::string tenants_table(const Json& tenants, const TableStyle& style) {
  Table t{{"NAME", "PRIORITY", "MEMORY", "USED", "REQUEST", "LIMIT", "DEVICES", "PROCESSES", "SOURCE", "ENFORCEMENT",
           "DENIED"},
          {},
          {9, 10}};
  for (const auto& x : tenants)
    t.rows.push_back({x["name"].get<std::string>(), x["priority"].get<std::string>(),
                      human_bytes(x["memory_bytes"].get<uint64_t>()), tenant_used_text(x),
                      human_percent(x["compute_request"].get<double>()),
                      human_percent(x["compute_limit"].get<double>()), devices_text(x["devices"]),
                      x["processes"].dump(), x["source"].get<std::string>(),
                      enforcement_text(x.value("enforcement", std::string())), std::to_string(allocations_denied(x))});
  return render_table(t, style);
}

std::string tenant_gpus_table(const Json& tenants, const TableStyle& style, const Json& processes) {
  // REQUEST is the configured share, TARGET the effective one (the request
  // plus this tenant's part of time nobody requested; architecture.md).
  Table t{{"TENANT", "GPU", "USED", "LIMIT", "DENIED", "REQUEST", "TARGET", "ACHIEVED", "LEASE", "GRANTED",
           "PREEMPTED", "WAITED", "UUID", "PIDS"},
          {},
          {12, 13}};
  for (const auto& x : tenants)
    for (const auto& g : x["gpus"]) {
      if (!g["allowed"].get<bool>()) continue;
      std::string name = x["name"].get<std::string>();
      std::string pids = pids_on(processes, name, g["index"].get<int>());
      t.rows.push_back({name, g["index"].dump(), used_text(g["memory_used_bytes"].get<uint64_t>(), over_quota(g)),
                        human_bytes(g["memory_limit_bytes"].get<uint64_t>()), g["allocations_denied"].dump(),
                        human_percent(g["share_target"].get<double>()),
                        human_percent(g.value("share_effective", g["share_target"].get<double>())),
                        human_percent(g["share_achieved"].get<double>()), lease_state(g),
                        g["leases_granted"].dump(), g["leases_preempted"].dump(),
                        human_duration(g["lease_wait_ns"].get<uint64_t>()), g["uuid"].get<std::string>(),
                        pids.empty() ? "-" : pids});
    }
  return render_table(t, style);
}

// Shared by `tenant create` and `token rotate`: the tenant, then its token.
std::string tenant_with_token_text(const Json& doc, const TableStyle& style) {
  return tenant_detail(doc["tenant"], style) + "\nToken: " + doc["token"].get<std::string>() + "\n";
}

namespace {

void add_list(CLI::App* tenant, Context& ctx) {
  CLI::App* cmd = tenant->add_subcommand("list", "List every tenant with its quota and use");
  cmd->callback([&ctx] {
    ctx.action = [&ctx] {
      return ctx.reply(
          ctx.client().list_tenants(),
          [](const api::ListTenantsResponse& r) { return Json{{"tenants", tenants_json(r.tenants())}}; },
          [](const Json& doc, const TableStyle& st) { return tenants_table(doc["tenants"], st); });
    };
  });
}

void add_get(CLI::App* tenant, Context& ctx) {
  CLI::App* cmd = tenant->add_subcommand("get", "Show one tenant: settings and per-GPU use");
  auto name = std::make_shared<std::string>();
  add_name(cmd, name.get());
  cmd->callback([&ctx, name] {
    ctx.action = [&ctx, name] {
      AdminClient client = ctx.client();
      auto answer = client.get_tenant(*name);
      // Wide shows the PIDS on each GPU: one more call, for the table only.
      Json processes;
      if (answer && ctx.output_format() == Format::kWide)
        if (auto procs = client.processes(*name)) processes = processes_json(procs->processes());
      return ctx.reply(answer, tenant_json, [processes](const Json& doc, const TableStyle& st) {
        return tenant_detail(doc, st, processes);
      });
    };
  });
}

void add_create(CLI::App* tenant, Context& ctx) {
  CLI::App* cmd = tenant->add_subcommand("create", "Create a tenant (prints its token)");
  auto flags = std::make_shared<TenantFlags>();
  add_name(cmd, &flags->name);
  add_tenant_flags(cmd, flags.get());
  cmd->get_option("--memory")->required();
  cmd->add_option("--token", flags->token, "the tenant's token (16 to 127 printable characters, no spaces); default: generated");
  cmd->callback([&ctx, flags] {
    ctx.action = [&ctx, flags] {
      auto req = make_create_request(*flags);
      if (!req) return ctx.usage_error("vgpuctl tenant create", req.error());
      return ctx.reply(ctx.client().create_tenant(*req), tenant_with_token_json, TableText(tenant_with_token_text));
    };
  });
}

void add_update(CLI::App* tenant, Context& ctx) {
  CLI::App* cmd =
      tenant->add_subcommand("update", "Change a tenant's quota, shares, priority, devices or enforcement, live");
  auto flags = std::make_shared<TenantFlags>();
  add_name(cmd, &flags->name);
  add_tenant_flags(cmd, flags.get());
  cmd->callback([&ctx, flags] {
    ctx.action = [&ctx, flags] {
      auto req = make_update_request(*flags);
      if (!req) return ctx.usage_error("vgpuctl tenant update", req.error());
      return ctx.reply(ctx.client().update_tenant(*req), tenant_json, [](const Json& doc, const TableStyle& st) { return tenant_detail(doc, st); });
    };
  });
}

void add_delete(CLI::App* tenant, Context& ctx) {
  CLI::App* cmd = tenant->add_subcommand("delete", "Delete a tenant; its processes lose their registration");
  auto name = std::make_shared<std::string>();
  add_name(cmd, name.get());
  cmd->callback([&ctx, name] {
    ctx.action = [&ctx, name] {
      return ctx.reply(
          ctx.client().delete_tenant(*name), [name](const api::DeleteTenantResponse&) { return Json{{"deleted", *name}}; },
          [](const Json& doc, const TableStyle&) { return "tenant '" + doc["deleted"].get<std::string>() + "' deleted\n"; });
    };
  });
}

void add_reset(CLI::App* tenant, Context& ctx) {
  CLI::App* cmd = tenant->add_subcommand(
      "reset", "Return a tenant to its definition in vgpud's configuration file (undo runtime changes or a delete)");
  auto name = std::make_shared<std::string>();
  add_name(cmd, name.get());
  cmd->callback([&ctx, name] {
    ctx.action = [&ctx, name] {
      return ctx.reply(ctx.client().reset_tenant(*name), tenant_json,
                       [](const Json& doc, const TableStyle& st) { return tenant_detail(doc, st); });
    };
  });
}

}  // namespace

void add_tenant_commands(CLI::App& app, Context& ctx) {
  CLI::App* tenant = app.add_subcommand("tenant", "Manage tenants: list, get, create, update, delete, reset");
  tenant->require_subcommand(1);
  add_list(tenant, ctx);
  add_get(tenant, ctx);
  add_create(tenant, ctx);
  add_update(tenant, ctx);
  add_delete(tenant, ctx);
  add_reset(tenant, ctx);
}

}  // namespace vgpu::cli
