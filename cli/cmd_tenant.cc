// `vgpuctl tenant list|get|create|update|delete`: tenants and their quotas.
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

std::string lease_state(const Json& g) {
  if (g["holds_lease"].get<bool>()) return "holding";
  return g["waiting"].get<bool>() ? "waiting" : "idle";
}

std::string enforcement_text(const std::string& policy) { return policy.empty() ? "default (node)" : policy; }

// The detail view of one tenant: its settings, then its GPUs.
std::string tenant_detail(const Json& t) {
  Table kv{{"Name:", t["name"].get<std::string>()}, {}};
  kv.rows = {{"Priority:", t["priority"].get<std::string>()},
             {"Memory:", human_bytes(t["memory_bytes"].get<uint64_t>()) + " per GPU"},
             {"Request:", human_percent(t["compute_request"].get<double>())},
             {"Limit:", human_percent(t["compute_limit"].get<double>())},
             {"Devices:", devices_text(t["devices"])},
             {"Enforcement:", enforcement_text(t.value("enforcement", std::string()))},
             {"Source:", t["source"].get<std::string>()},
             {"Processes:", t["processes"].dump()}};
  return render_table(kv) + "\n" + tenant_gpus_table(Json::array({t}));
}

// A tenant's name as the required positional argument of a subcommand.
void add_name(CLI::App* cmd, std::string* name) {
  cmd->add_option("NAME", *name, "tenant name")->required();
}

}  // namespace

std::string tenants_table(const Json& tenants) {
  Table t{{"NAME", "PRIORITY", "MEMORY", "USED", "REQUEST", "LIMIT", "DEVICES", "PROCESSES", "SOURCE"}, {}};
  for (const auto& x : tenants)
    t.rows.push_back({x["name"].get<std::string>(), x["priority"].get<std::string>(),
                      human_bytes(x["memory_bytes"].get<uint64_t>()), human_bytes(memory_used(x)),
                      human_percent(x["compute_request"].get<double>()),
                      human_percent(x["compute_limit"].get<double>()), devices_text(x["devices"]),
                      x["processes"].dump(), x["source"].get<std::string>()});
  return render_table(t);
}

std::string tenant_gpus_table(const Json& tenants) {
  Table t{{"TENANT", "GPU", "USED", "LIMIT", "DENIED", "REQUEST", "TARGET", "ACHIEVED", "LEASE", "GRANTED",
           "PREEMPTED", "WAITED"},
          {}};
  for (const auto& x : tenants)
    for (const auto& g : x["gpus"]) {
      if (!g["allowed"].get<bool>()) continue;
      t.rows.push_back({x["name"].get<std::string>(), g["index"].dump(),
                        human_bytes(g["memory_used_bytes"].get<uint64_t>()),
                        human_bytes(g["memory_limit_bytes"].get<uint64_t>()), g["allocations_denied"].dump(),
                        human_percent(g["share_target"].get<double>()),
                        human_percent(g.value("share_effective", g["share_target"].get<double>())),
                        human_percent(g["share_achieved"].get<double>()), lease_state(g),
                        g["leases_granted"].dump(), g["leases_preempted"].dump(),
                        human_duration(g["lease_wait_ns"].get<uint64_t>())});
    }
  return render_table(t);
}

// Shared by `tenant create` and `token rotate`: the tenant, then its token.
std::string tenant_with_token_text(const Json& doc) {
  return tenant_detail(doc["tenant"]) + "\nToken: " + doc["token"].get<std::string>() + "\n";
}

namespace {

void add_list(CLI::App* tenant, Context& ctx) {
  CLI::App* cmd = tenant->add_subcommand("list", "List every tenant with its quota and use");
  cmd->callback([&ctx] {
    ctx.action = [&ctx] {
      return ctx.reply(
          ctx.client().list_tenants(),
          [](const api::ListTenantsResponse& r) { return Json{{"tenants", tenants_json(r.tenants())}}; },
          [](const Json& doc) { return tenants_table(doc["tenants"]); });
    };
  });
}

void add_get(CLI::App* tenant, Context& ctx) {
  CLI::App* cmd = tenant->add_subcommand("get", "Show one tenant: settings and per-GPU use");
  auto name = std::make_shared<std::string>();
  add_name(cmd, name.get());
  cmd->callback([&ctx, name] {
    ctx.action = [&ctx, name] { return ctx.reply(ctx.client().get_tenant(*name), tenant_json, tenant_detail); };
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
      return ctx.reply(ctx.client().create_tenant(*req), tenant_with_token_json, tenant_with_token_text);
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
      return ctx.reply(ctx.client().update_tenant(*req), tenant_json, tenant_detail);
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
          [](const Json& doc) { return "tenant '" + doc["deleted"].get<std::string>() + "' deleted\n"; });
    };
  });
}

}  // namespace

void add_tenant_commands(CLI::App& app, Context& ctx) {
  CLI::App* tenant = app.add_subcommand("tenant", "Manage tenants: list, get, create, update, delete");
  tenant->require_subcommand(1);
  add_list(tenant, ctx);
  add_get(tenant, ctx);
  add_create(tenant, ctx);
  add_update(tenant, ctx);
  add_delete(tenant, ctx);
}

}  // namespace vgpu::cli
