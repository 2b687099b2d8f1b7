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
  auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  compare(&out, "socket", r.socket, f.socket, str);
  compare(&out, "admin_socket", r.admin_socket, f.admin_socket, str);
  compare(&out, "admin_group", r.admin_group, f.admin_group, str);
  compare(&out, "metrics", r.metrics, f.metrics, str);
  compare(&out, "state_dir", r.state_dir, f.state_dir, str);
  // The enforcement keys a reload applies live are in live_enforcement_changes().
  compare(&out, "enforcement.bpf", r.enforcement.bpf, f.enforcement.bpf, str);
  compare(&out, "enforcement.bpf_launches", r.enforcement.bpf_launches, f.enforcement.bpf_launches, flag);
  return out;
}

std::vector<std::string> live_node_changes(const Config& r, const Config& f) {
  std::vector<std::string> out;
  auto dur = [](uint64_t ns) { return duration_text(ns); };
  auto num = [](uint64_t n) { return std::to_string(n); };
  const SchedulerConfig &rs = r.scheduler, &fs = f.scheduler;
  compare(&out, "scheduler.quantum", rs.quantum_ns, fs.quantum_ns, dur);
  compare(&out, "scheduler.window", rs.window_ns, fs.window_ns, dur);
  compare(&out, "scheduler.inflight_cap", uint64_t{rs.inflight_cap}, uint64_t{fs.inflight_cap}, num);
  compare(&out, "scheduler.drain_timeout", rs.drain_timeout_ns, fs.drain_timeout_ns, dur);
  compare(&out, "scheduler.idle_check", rs.idle_check_ns, fs.idle_check_ns, dur);
  const LimitsConfig &rl = r.limits, &fl = f.limits;
  compare(&out, "limits.hello_timeout", rl.hello_timeout_ns, fl.hello_timeout_ns, dur);
  compare(&out, "limits.max_connections", uint64_t{rl.max_connections}, uint64_t{fl.max_connections}, num);
  compare(&out, "limits.max_connections_per_uid", uint64_t{rl.max_connections_per_uid},
          uint64_t{fl.max_connections_per_uid}, num);
  compare(&out, "limits.messages_per_second", uint64_t{rl.messages_per_second}, uint64_t{fl.messages_per_second}, num);
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
  compare(&out, "enforcement.context_overhead", re.context_overhead, fe.context_overhead, bytes);
  compare(&out, "enforcement.grace", re.grace_ns, fe.grace_ns, dur);
  compare(&out, "enforcement.startup_grace", re.startup_grace_ns, fe.startup_grace_ns, dur);
  compare(&out, "enforcement.allowlist", join(re.allowlist), join(fe.allowlist), str);
  compare(&out, "enforcement.overcommit", re.overcommit, fe.overcommit, flag);
  compare(&out, "enforcement.revoke_deadline", re.revoke_deadline_ns, fe.revoke_deadline_ns, dur);
  return out;
}

EnforcementConfig with_live_enforcement(const EnforcementConfig& running, const EnforcementConfig& file) {
  // Everything but the eBPF probe, which is attached once at start.
  EnforcementConfig out = file;
  out.bpf = running.bpf;
  out.bpf_launches = running.bpf_launches;
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
