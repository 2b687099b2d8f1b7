#include "reload.h"

#include <cstdio>

#include "vgpu/units.h"

namespace vgpu::sched {
namespace {

std::string duration_text(uint64_t ns) {
  char buf[64];
  if (ns % 1'000'000'000 == 0) std::snprintf(buf, sizeof buf, "%llus", static_cast<unsigned long long>(ns / 1'000'000'000));
  else if (ns % 1'000'000 == 0) std::snprintf(buf, sizeof buf, "%llums", static_cast<unsigned long long>(ns / 1'000'000));
  else std::snprintf(buf, sizeof buf, "%lluns", static_cast<unsigned long long>(ns));
  return buf;
}

std::string percent(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g%%", f * 100);
  return buf;
}

std::string join(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out + "]";
}

template <typename T, typename F>
void compare(std::vector<std::string>* out, const char* key, const T& a, const T& b, F text) {
  if (!(a == b)) out->push_back(std::string(key) + ": " + text(a) + " -> " + text(b));
}

}  // namespace

std::vector<std::string> restart_only_changes(const Config& r, const Config& f) {
  std::vector<std::string> out;
  auto str = [](const std::string& s) { return s.empty() ? std::string("(none)") : s; };
  auto dur = [](uint64_t ns) { return duration_text(ns); };
  auto bytes = [](uint64_t b) { return format_bytes(b); };
  auto num = [](uint64_t n) { return std::to_string(n); };
  auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  compare(&out, "socket", r.socket, f.socket, str);
  compare(&out, "admin_socket", r.admin_socket, f.admin_socket, str);
  compare(&out, "admin_group", r.admin_group, f.admin_group, str);
  compare(&out, "metrics", r.metrics, f.metrics, str);
  compare(&out, "state_dir", r.state_dir, f.state_dir, str);
  compare(&out, "scheduler.quantum", r.scheduler.quantum_ns, f.scheduler.quantum_ns, dur);
  compare(&out, "scheduler.window", r.scheduler.window_ns, f.scheduler.window_ns, dur);
  compare(&out, "scheduler.inflight_cap", uint64_t{r.scheduler.inflight_cap}, uint64_t{f.scheduler.inflight_cap}, num);
  compare(&out, "scheduler.drain_timeout", r.scheduler.drain_timeout_ns, f.scheduler.drain_timeout_ns, dur);
  compare(&out, "scheduler.idle_check", r.scheduler.idle_check_ns, f.scheduler.idle_check_ns, dur);
  const auto &re = r.enforcement, &fe = f.enforcement;
  // The enforcement keys a reload applies live are in live_enforcement_changes().
  compare(&out, "enforcement.context_overhead", re.context_overhead, fe.context_overhead, bytes);
  compare(&out, "enforcement.startup_grace", re.startup_grace_ns, fe.startup_grace_ns, dur);
  compare(&out, "enforcement.revoke_deadline", re.revoke_deadline_ns, fe.revoke_deadline_ns, dur);
  compare(&out, "enforcement.bpf", re.bpf, fe.bpf, str);
  compare(&out, "enforcement.bpf_launches", re.bpf_launches, fe.bpf_launches, flag);
  compare(&out, "limits.hello_timeout", r.limits.hello_timeout_ns, f.limits.hello_timeout_ns, dur);
  compare(&out, "limits.max_connections", uint64_t{r.limits.max_connections}, uint64_t{f.limits.max_connections}, num);
  compare(&out, "limits.max_connections_per_uid", uint64_t{r.limits.max_connections_per_uid},
          uint64_t{f.limits.max_connections_per_uid}, num);
  compare(&out, "limits.messages_per_second", uint64_t{r.limits.messages_per_second},
          uint64_t{f.limits.messages_per_second}, num);
  return out;
}

std::vector<std::string> live_enforcement_changes(const EnforcementConfig& re, const EnforcementConfig& fe) {
  std::vector<std::string> out;
  auto str = [](const std::string& s) { return s; };
  auto dur = [](uint64_t ns) { return duration_text(ns); };
  auto bytes = [](uint64_t b) { return format_bytes(b); };
  auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  compare(&out, "enforcement.policy", std::string(policy_name(re.policy)), std::string(policy_name(fe.policy)), str);
  compare(&out, "enforcement.poll_interval", re.poll_interval_ns, fe.poll_interval_ns, dur);
  compare(&out, "enforcement.tolerance", re.tolerance, fe.tolerance, bytes);
  compare(&out, "enforcement.context_allowance", re.context_allowance, fe.context_allowance, bytes);
  compare(&out, "enforcement.grace", re.grace_ns, fe.grace_ns, dur);
  compare(&out, "enforcement.allowlist", join(re.allowlist), join(fe.allowlist), str);
  compare(&out, "enforcement.overcommit", re.overcommit, fe.overcommit, flag);
  return out;
}

EnforcementConfig with_live_enforcement(const EnforcementConfig& running, const EnforcementConfig& file) {
  EnforcementConfig out = running;
  out.policy = file.policy;
  out.poll_interval_ns = file.poll_interval_ns;
  out.tolerance = file.tolerance;
  out.context_allowance = file.context_allowance;
  out.grace_ns = file.grace_ns;
  out.allowlist = file.allowlist;
  out.overcommit = file.overcommit;
  return out;
}

std::string describe_tenant_change(const TenantConfig& a, const TenantConfig& b) {
  std::vector<std::string> parts;
  auto str = [](const std::string& s) { return s; };
  compare(&parts, "priority", std::string(priority_name(a.priority)), std::string(priority_name(b.priority)), str);
  compare(&parts, "memory", a.memory, b.memory, [](uint64_t v) { return format_bytes(v); });
  compare(&parts, "request", a.request, b.request, [](double v) { return percent(v); });
  compare(&parts, "limit", a.limit, b.limit, [](double v) { return percent(v); });
  compare(&parts, "devices", join(a.devices), join(b.devices), str);
  auto pol = [](const std::optional<EnforcePolicy>& p) { return std::string(p ? policy_name(*p) : "default"); };
  compare(&parts, "enforcement", pol(a.enforcement), pol(b.enforcement), str);
  if (a.token != b.token) parts.push_back("token changed");
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out;
}

}  // namespace vgpu::sched
