#include "tenant_flags.h"

#include "vgpu/units.h"

namespace vgpu::cli {

namespace {

// The device list as sent to vgpud: "all" (or nothing) means every GPU.
std::vector<std::string> device_list(const std::vector<std::string>& given) {
  if (given.size() == 1 && (given[0] == "all" || given[0].empty())) return {};
  return given;
}

// The API's spelling: "" is the node's policy.
std::string policy_value(const std::string& flag) { return flag == "default" ? "" : flag; }

std::string check_devices(std::string& text) {
  if (text.empty() || text == "all") return "";
  for (char c : text)
    if (std::isspace(static_cast<unsigned char>(c))) return "'" + text + "' is not a GPU index or UUID";
  return "";
}

Result<double> fraction(const std::string& text) {
  auto pct = parse_percent(text);
  if (!pct) return make_error(pct.error());
  return *pct / 100.0;
}

}  // namespace

CLI::Validator bytes_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        auto b = parse_bytes(text);
        return b ? "" : b.error();
      },
      "", "bytes");
}

CLI::Validator percent_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        auto p = parse_percent(text);
        return p ? "" : p.error();
      },
      "", "percent");
}

void add_tenant_flags(CLI::App* cmd, TenantFlags* flags) {
  cmd->add_option("--memory", flags->memory, "VRAM quota per GPU, e.g. 512Mi, 8Gi")->type_name("SIZE")->check(bytes_validator());
  cmd->add_option("--request", flags->request, "guaranteed share of GPU time, e.g. 30%")
      ->type_name("PERCENT")
      ->check(percent_validator());
  cmd->add_option("--limit", flags->limit, "hard cap on GPU time, e.g. 100%")
      ->type_name("PERCENT")
      ->check(percent_validator());
  cmd->add_option("--priority", flags->priority, "high, normal or low")
      ->type_name("PRIORITY")
      ->check(CLI::IsMember({"high", "normal", "low"}));
  cmd->add_option("--devices", flags->devices, "GPU indexes or UUIDs, comma-separated, or 'all'")
      ->type_name("LIST")
      ->delimiter(',')
      ->check(CLI::Validator(check_devices, "", "devices"));
  cmd->add_option("--enforcement", flags->enforcement,
                  "what the backstop does to its processes over quota: kill, report, or default (the node's policy)")
      ->type_name("POLICY")
      ->check(CLI::IsMember({"kill", "report", "default"}));
}

Result<api::CreateTenantRequest> make_create_request(const TenantFlags& flags) {
  if (!flags.memory) return make_error("--memory is required (e.g. --memory 8Gi)");
  api::CreateTenantRequest req;
  api::TenantSpec* spec = req.mutable_spec();
  spec->set_name(flags.name);
  auto mem = parse_bytes(*flags.memory);
  if (!mem) return make_error("--memory: " + mem.error());
  spec->set_memory_bytes(*mem);
  spec->set_priority(flags.priority.value_or("normal"));
  auto request = fraction(flags.request.value_or("0%"));
  if (!request) return make_error("--request: " + request.error());
  auto limit = fraction(flags.limit.value_or("100%"));
  if (!limit) return make_error("--limit: " + limit.error());
  spec->set_compute_request(*request);
  spec->set_compute_limit(*limit);
  for (const auto& d : device_list(flags.devices.value_or(std::vector<std::string>{}))) spec->add_devices(d);
  if (flags.enforcement) spec->set_enforcement(policy_value(*flags.enforcement));
  req.set_token(flags.token);
  return req;
}

Result<api::UpdateTenantRequest> make_update_request(const TenantFlags& flags) {
  api::UpdateTenantRequest req;
  req.set_name(flags.name);
  if (flags.memory) {
    auto mem = parse_bytes(*flags.memory);
    if (!mem) return make_error("--memory: " + mem.error());
    req.set_memory_bytes(*mem);
  }
  if (flags.request) {
    auto f = fraction(*flags.request);
    if (!f) return make_error("--request: " + f.error());
    req.set_compute_request(*f);
  }
  if (flags.limit) {
    auto f = fraction(*flags.limit);
    if (!f) return make_error("--limit: " + f.error());
    req.set_compute_limit(*f);
  }
  if (flags.priority) req.set_priority(*flags.priority);
  if (flags.devices) {
    req.set_set_devices(true);
    for (const auto& d : device_list(*flags.devices)) req.add_devices(d);
  }
  if (flags.enforcement) req.set_enforcement(policy_value(*flags.enforcement));
  if (!flags.memory && !flags.request && !flags.limit && !flags.priority && !flags.devices && !flags.enforcement)
    return make_error(
        "nothing to change: give at least one of --memory, --request, --limit, --priority, --devices, --enforcement");
  return req;
}

}  // namespace vgpu::cli
