// The tenant flags shared by `tenant create` and `tenant update`
// (--memory 8Gi, --request 30%, --limit 100%, --priority high|normal|low,
// --devices 0,1|all, --enforcement kill|report|default) and their translation into admin API requests. Units are
// checked when the command line is parsed (validators below), so a bad unit
// is a usage error reported before vgpud is contacted. Thread-safe: values.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "admin.pb.h"
#include "vgpu/result.h"

namespace vgpu::cli {

namespace api = ::vgpu::admin::v1;

struct TenantFlags {
  std::string name;
  std::optional<std::string> memory;    // "8Gi"
  std::optional<std::string> request;   // "30%"
  std::optional<std::string> limit;     // "100%"
  std::optional<std::string> priority;  // "high" | "normal" | "low"
  std::optional<std::vector<std::string>> devices;  // {"all"} or {} means every GPU
  std::optional<std::string> enforcement;  // "kill" | "report" | "default" (the node's policy)
  std::string token;                    // create only; empty: vgpud generates one
};

// Adds --memory, --request, --limit, --priority, --devices, --enforcement bound to `flags`.
void add_tenant_flags(CLI::App* cmd, TenantFlags* flags);

// Validators for CLI11: byte sizes (parse_bytes) and percentages (parse_percent).
CLI::Validator bytes_validator();
CLI::Validator percent_validator();

// A create request: --memory is required (as in the config file); priority
// defaults to normal, request to 0%, limit to 100%, devices to all GPUs,
// enforcement to the node's policy.
Result<api::CreateTenantRequest> make_create_request(const TenantFlags& flags);
// An update request setting only the given flags; fails if none is given.
Result<api::UpdateTenantRequest> make_update_request(const TenantFlags& flags);

}  // namespace vgpu::cli
