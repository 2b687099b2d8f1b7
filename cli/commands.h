// The subcommand families of vgpuctl, one file each (cmd_*.cc). Each adds its
// subcommands to `app`; their callbacks set ctx.action. Not thread-safe.
#pragma once

#include <CLI/CLI.hpp>

#include "context.h"

namespace vgpu::cli {

void add_status_command(CLI::App& app, Context& ctx);   // cmd_status.cc
void add_tenant_commands(CLI::App& app, Context& ctx);  // cmd_tenant.cc
void add_ps_command(CLI::App& app, Context& ctx);       // cmd_ps.cc
void add_top_command(CLI::App& app, Context& ctx);      // cmd_top.cc
void add_token_commands(CLI::App& app, Context& ctx);   // cmd_token.cc
void add_events_command(CLI::App& app, Context& ctx);   // cmd_events.cc
// `completion bash|zsh` and `man [--dir DIR]`, generated from `app` itself
// (cmd_help.cc); add them last so that they see every other command.
void add_help_commands(CLI::App& app, Context& ctx);

// Table text shared by several commands (defined in cmd_status.cc,
// cmd_tenant.cc, cmd_ps.cc and cmd_events.cc), from the JSON model of admin_json.h.
// `style` picks normal or wide columns and whether headers are printed.
std::string status_table(const Json& status, const TableStyle& style = {});
std::string tenants_table(const Json& tenants, const TableStyle& style = {});  // one row per tenant
// One row per tenant and GPU; `processes` (a Process array, may be null)
// fills the wide PIDS column.
std::string tenant_gpus_table(const Json& tenants, const TableStyle& style = {}, const Json& processes = Json());
std::string processes_table(const Json& processes, const TableStyle& style = {});
std::string tenant_with_token_text(const Json& doc, const TableStyle& style = {});  // a tenant, then its token
// tenant get; `processes` (may be null) fills the wide PIDS column.
std::string tenant_detail(const Json& tenant, const TableStyle& style = {}, const Json& processes = Json());
std::string events_table(const Json& events, const TableStyle& style = {});         // cmd_events.cc
// "2025-01-02T03:04:05.123Z": a wall-clock time in ns since the epoch, UTC.
std::string iso8601_utc(uint64_t unix_ns);

}  // namespace vgpu::cli
