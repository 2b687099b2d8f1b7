#include "admin_service.h"

#include <optional>

#include <algorithm>
#include <cmath>
#include <thread>

#include "daemon.h"
#include "gpu_inventory.h"
#include "log.h"
#include "reload.h"

namespace vgpu::sched {

namespace {

// A tenant's settings for the audit log ("memory: 0B -> 8Gi, request: ...").
std::string tenant_summary(const TenantConfig& c) {
  TenantConfig none;
  none.name = c.name;
  none.memory = 0;
  none.request = 0;
  none.limit = 1;
  none.token = c.token;
  std::string d = describe_tenant_change(none, c);
  return d.empty() ? std::string("defaults") : d;
}

grpc::Status invalid(const std::string& m) { return {grpc::StatusCode::INVALID_ARGUMENT, m}; }

grpc::Status from_error(const std::string& m) {
  if (m.rfind("no tenant named", 0) == 0) return {grpc::StatusCode::NOT_FOUND, m};
  if (m.find("already exists") != std::string::npos) return {grpc::StatusCode::ALREADY_EXISTS, m};
  return invalid(m);
}

void fill_spec(const TenantConfig& c, pb::TenantSpec* s) {
  s->set_name(c.name);
  s->set_priority(priority_name(c.priority));
  s->set_memory_bytes(c.memory);
  s->set_compute_request(c.request);
  s->set_compute_limit(c.limit);
  for (const auto& d : c.devices) s->add_devices(d);
  s->set_enforcement(c.enforcement ? policy_name(*c.enforcement) : "");
}

// A tenant's enforcement policy as the API gives it: "" (or "default") is the
// node's policy.
Result<std::optional<EnforcePolicy>> policy_from(const std::string& s) {
  if (s.empty() || s == "default") return std::optional<EnforcePolicy>();
  auto p = parse_policy(s);
  if (!p) return make_error("enforcement '" + s + "' is not one of kill, report, default");
  return std::optional<EnforcePolicy>(*p);
}

// Everything about one tenant; loop thread.
void fill_tenant(Daemon& d, Tenant* t, pb::Tenant* out) {
  fill_spec(t->config, out->mutable_spec());
  const AllocationRecord* a = d.allocation(t->config.name);
  out->set_source(a ? "allocation" : d.from_api(t->config.name) ? "api" : "config");
  if (a) {
    out->mutable_kubernetes()->set_namespace_(a->ns);
    out->mutable_kubernetes()->set_pod(a->pod);
    out->mutable_kubernetes()->set_container(a->container);
  }
  uint32_t procs = 0;
  for (auto& [fd, c] : d.hooks().clients()) procs += c->tenant == t->id;
  out->set_processes(procs);
  uint64_t now = now_ns();
  const auto& gpus = d.tenants().gpus();
  for (size_t i = 0; i < gpus.size(); ++i) {
    int g = static_cast<int>(i);
    auto* o = out->add_gpus();
    o->set_gpu_index(g);
    o->set_gpu_uuid(gpus[i].uuid);
    o->set_allowed(t->allowed[i]);
    o->set_memory_used_bytes(t->reported_used(g));
    o->set_memory_limit_bytes(t->limit(g));
    o->set_allocations_denied(t->reported_denied(g));
    o->set_share_target(t->config.request);
    o->set_share_achieved(d.hooks().share(t->id, g, now));
    o->set_share_effective(d.hooks().gpu(g).arbiter->effective_target(t->id, now));
    const GpuLeaseState& gl = d.hooks().gpu(g);
    o->set_holds_lease(gl.holder == t->id);
    o->set_waiting(gl.arbiter->waiting(t->id));
    o->set_leases_granted(gl.arbiter->granted_count(t->id));
    o->set_leases_preempted(gl.arbiter->preempted_count(t->id));
    o->set_lease_wait_ns(t->reported_wait_ns(g));
  }
}

void fill_status(Daemon& d, pb::NodeStatus* out) {
  out->set_version("vgpud 0.1 (protocol 1)");
  out->set_uptime_ns(now_ns() - d.started_ns());
  auto tenants = d.tenants().all();
  out->set_tenants(static_cast<uint32_t>(tenants.size()));
  out->set_processes(static_cast<uint32_t>(d.hooks().clients().size()));
  const auto& gpus = d.tenants().gpus();
  for (size_t i = 0; i < gpus.size(); ++i) {
    auto* g = out->add_gpus();
    g->set_index(gpus[i].index);
    g->set_uuid(gpus[i].uuid);
    g->set_name(gpus[i].name);
    g->set_memory_total_bytes(gpus[i].memory);
    GpuReading r = read_gpu(gpus[i].index);
    g->set_memory_used_bytes(r.memory_used);
    g->set_healthy(r.ok);
    if (!r.ok) g->set_health_detail("NVML cannot read this GPU");
    g->set_busy_fraction(r.busy_fraction);
    uint64_t allocated = 0, quota = 0;
    for (Tenant* t : tenants) {
      allocated += t->reported_used(static_cast<int>(i));
      quota += t->limit(static_cast<int>(i));  // 0 where not allowed; per-GPU quotas of allocations
      if (d.hooks().gpu(static_cast<int>(i)).arbiter->waiting(t->id)) g->add_waiting(t->config.name);
    }
    g->set_memory_allocated_bytes(allocated);
    g->set_memory_quota_bytes(quota);
    if (Tenant* h = d.tenants().by_id(d.hooks().gpu(static_cast<int>(i)).holder)) g->set_lease_holder(h->config.name);
  }
}

// Registered processes (ledger bytes and lease per allowed GPU, next to what
// NVML saw at the backstop's last poll), then, unless one tenant is asked
// for, the unregistered processes the backstop saw using a GPU.
void fill_processes(Daemon& d, const std::string& only, pb::ListProcessesResponse* out) {
  const Enforcement& e = d.enforcement();
  const size_t ngpus = d.tenants().gpus().size();
  for (auto& [fd, c] : d.hooks().clients()) {
    Tenant* t = d.tenants().by_id(c->tenant);
    if (!t || (!only.empty() && t->config.name != only)) continue;
    auto* p = out->add_processes();
    p->set_pid(c->peer.pid);
    p->set_tenant(t->config.name);
    p->set_managed(true);
    for (size_t i = 0; i < ngpus; ++i) {
      int gi = static_cast<int>(i);
      uint64_t physical = e.physical(c->peer.pid, gi);
      // A GPU the tenant may not use is listed only if the process holds
      // memory there anyway (the backstop acts on it).
      if (!t->allowed[i] && physical == 0) continue;
      auto* g = p->add_gpus();
      g->set_gpu_index(gi);
      g->set_memory_bytes(t->allowed[i] ? t->reported_used(gi, c->slot) : 0);
      bool holding = d.hooks().gpu(gi).holder == t->id;
      g->set_lease(holding ? "holding" : (t->allowed[i] && c->waiting[i]) ? "waiting" : "idle");
      g->set_physical_bytes(physical);
    }
  }
  if (!only.empty()) return;
  for (const auto& [pid, bytes] : e.unmanaged()) {
    auto* p = out->add_processes();
    p->set_pid(pid);
    p->set_managed(false);
    for (size_t i = 0; i < ngpus; ++i) {
      uint64_t physical = e.physical(pid, static_cast<int>(i));
      if (physical == 0) continue;
      auto* g = p->add_gpus();
      g->set_gpu_index(static_cast<int>(i));
      g->set_lease("none");
      g->set_physical_bytes(physical);
    }
  }
}

void fill_event(const EnforcementEvent& e, pb::Event* out) {
  out->set_unix_ns(e.unix_ns);
  out->set_reason(reason_name(e.reason));
  out->set_action(e.action);
  out->set_pid(e.pid);
  out->set_tenant(e.tenant);
  out->set_gpu_index(e.gpu);
  out->set_detail(e.detail);
}

// Shares arrive as doubles: NaN compares false with every bound and would
// pass a range check, so non-finite values are refused by name first.
std::optional<std::string> non_finite(const char* field, double v) {
  if (std::isfinite(v)) return std::nullopt;
  return std::string(field) + " must be a finite number between 0 and 1";
}

Result<TenantConfig> spec_to_config(const pb::TenantSpec& s) {
  if (auto e = non_finite("compute_request", s.compute_request())) return make_error(*e);
  if (auto e = non_finite("compute_limit", s.compute_limit())) return make_error(*e);
  TenantConfig c;
  c.name = s.name();
  auto prio = parse_priority(s.priority().empty() ? "normal" : s.priority());
  if (!prio) return make_error("priority '" + s.priority() + "' is not one of high, normal, low");
  c.priority = *prio;
  c.memory = s.memory_bytes();
  c.request = s.compute_request();
  c.limit = s.compute_limit() == 0 ? 1.0 : s.compute_limit();
  c.devices.assign(s.devices().begin(), s.devices().end());
  auto policy = policy_from(s.enforcement());
  if (!policy) return make_error(policy.error());
  c.enforcement = *policy;
  return c;
}

Result<std::pair<TenantConfig, AllocationRecord>> allocation_from(const pb::AllocationSpec& s) {
  pb::TenantSpec ts;
  ts.set_name(s.name());
  ts.set_priority(s.priority());
  ts.set_compute_request(s.compute_request());
  ts.set_compute_limit(s.compute_limit());
  auto parsed = spec_to_config(ts);
  if (!parsed) return Error{parsed.error()};
  TenantConfig c = *parsed;
  for (const pb::GpuQuota& q : s.quotas()) {
    if (q.memory_bytes() == 0) return make_error("the memory quota on '" + q.gpu_uuid() + "' is 0");
    if (!c.device_memory.emplace(q.gpu_uuid(), q.memory_bytes()).second)
      return make_error("GPU '" + q.gpu_uuid() + "' has two quotas");
    c.devices.push_back(q.gpu_uuid());
    c.memory = std::max(c.memory, q.memory_bytes());
  }
  AllocationRecord r{s.socket_root(), s.labels().namespace_(), s.labels().pod(), s.labels().container()};
  return std::make_pair(c, r);
}

// Only UUIDs of this node's GPUs (an index or a prefix would resolve, but a
// quota must name the GPU unambiguously across restarts).
Result<bool> check_uuids(const TenantConfig& c, const std::vector<Gpu>& gpus) {
  for (const auto& [uuid, bytes] : c.device_memory)
    if (std::none_of(gpus.begin(), gpus.end(), [&](const Gpu& g) { return g.uuid == uuid; }))
      return make_error("no GPU with UUID '" + uuid + "' on this node");
  return true;
}

void fill_allocation(Daemon& d, Tenant* t, const AllocationRecord& r, pb::Allocation* out) {
  pb::AllocationSpec* s = out->mutable_spec();
  s->set_name(t->config.name);
  for (const auto& [uuid, bytes] : t->config.device_memory) {
    auto* q = s->add_quotas();
    q->set_gpu_uuid(uuid);
    q->set_memory_bytes(bytes);
  }
  s->set_priority(priority_name(t->config.priority));
  s->set_compute_request(t->config.request);
  s->set_compute_limit(t->config.limit);
  s->mutable_labels()->set_namespace_(r.ns);
  s->mutable_labels()->set_pod(r.pod);
  s->mutable_labels()->set_container(r.container);
  s->set_socket_root(r.socket_root);
  out->set_socket_dir(socket_dir(r, t->config.name));
  out->set_socket_path(socket_path(r, t->config.name));
  out->set_listening(d.hooks().tenant_listening(t->id));
  fill_tenant(d, t, out->mutable_tenant());
}

}  // namespace

grpc::Status AdminService::CreateAllocation(Ctx* ctx, const pb::CreateAllocationRequest* in, pb::Allocation* out) {
  auto spec = allocation_from(in->spec());
  if (!spec) return invalid(spec.error());
  return on_loop([&] {
    auto& [c, r] = *spec;
    if (auto ok = check_uuids(c, d_.tenants().gpus()); !ok) return invalid(ok.error());
    bool existed = false;
    auto t = d_.create_allocation(c, r, &existed);
    if (!t) return from_error(t.error());
    fill_allocation(d_, *t, *d_.allocation(c.name), out);
    out->set_existed(existed);
    if (!existed) audit(ctx, "allocation '" + c.name + "' created: " + tenant_summary(c));
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::ListAllocations(Ctx*, const pb::ListAllocationsRequest*, pb::ListAllocationsResponse* out) {
  return on_loop([&] {
    for (const auto& [name, r] : d_.allocations())
      if (Tenant* t = d_.tenants().by_name(name)) fill_allocation(d_, t, r, out->add_allocations());
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::DeleteAllocation(Ctx* ctx, const pb::DeleteAllocationRequest* in, pb::DeleteAllocationResponse*) {
  return on_loop([&] {
    if (!d_.allocation(in->name()) && !d_.dormant(in->name()))
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no allocation named '" + in->name() + "'");
    auto r = d_.delete_tenant(in->name());
    if (r) audit(ctx, "allocation '" + in->name() + "' deleted");
    return r ? grpc::Status::OK : from_error(r.error());
  });
}

grpc::Status AdminService::SetAllocationLabels(Ctx* ctx, const pb::SetAllocationLabelsRequest* in, pb::Allocation* out) {
  return on_loop([&] {
    const AllocationRecord* have = d_.allocation(in->name());
    Tenant* t = d_.tenants().by_name(in->name());
    if (!have || !t) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no allocation named '" + in->name() + "'");
    AllocationRecord r = *have;
    r.ns = in->labels().namespace_();
    r.pod = in->labels().pod();
    r.container = in->labels().container();
    std::string before = have->ns + "/" + have->pod + "/" + have->container;
    auto ok = d_.set_allocation_record(in->name(), r);
    if (!ok) return invalid(ok.error());
    std::string after = r.ns + "/" + r.pod + "/" + r.container;
    if (before != after) audit(ctx, "allocation '" + in->name() + "' labels: " + before + " -> " + after);
    fill_allocation(d_, t, *d_.allocation(in->name()), out);
    return grpc::Status::OK;
  });
}

void AdminService::audit(grpc::ServerContext* ctx, const std::string& what) const {
  std::string who = ctx ? ctx->peer() : std::string("?");
  if (who_ && ctx) who = who_(ctx->peer());
  log_info("audit: %s: %s", who.c_str(), what.c_str());
}

grpc::Status AdminService::on_loop(const std::function<grpc::Status()>& fn) {
  grpc::Status result;
  if (!d_.loop().call([&] { result = fn(); })) return {grpc::StatusCode::UNAVAILABLE, "vgpud is shutting down"};
  return result;
}

grpc::Status AdminService::ListTenants(Ctx*, const pb::ListTenantsRequest*, pb::ListTenantsResponse* out) {
  return on_loop([&] {
    for (Tenant* t : d_.tenants().all()) fill_tenant(d_, t, out->add_tenants());
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::GetTenant(Ctx*, const pb::GetTenantRequest* in, pb::Tenant* out) {
  return on_loop([&] {
    Tenant* t = d_.tenants().by_name(in->name());
    if (!t) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no tenant named '" + in->name() + "'");
    fill_tenant(d_, t, out);
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::CreateTenant(Ctx* ctx, const pb::CreateTenantRequest* in, pb::TenantWithToken* out) {
  auto c = spec_to_config(in->spec());
  if (!c) return invalid(c.error());
  if (c->memory == 0) return invalid("memory is required (bytes > 0)");
  c.value().token = in->token();
  return on_loop([&] {
    auto t = d_.create_tenant(*c);
    if (!t) return from_error(t.error());
    audit(ctx, "tenant '" + c->name + "' created: " + tenant_summary((*t)->config));
    fill_tenant(d_, *t, out->mutable_tenant());
    out->set_token((*t)->config.token);
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::UpdateTenant(Ctx* ctx, const pb::UpdateTenantRequest* in, pb::Tenant* out) {
  return on_loop([&] {
    Tenant* t = d_.tenants().by_name(in->name());
    if (!t) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no tenant named '" + in->name() + "'");
    TenantConfig c = t->config;
    if (in->has_priority()) {
      auto p = parse_priority(in->priority());
      if (!p) return invalid("priority '" + in->priority() + "' is not one of high, normal, low");
      c.priority = *p;
    }
    if (in->has_memory_bytes()) c.memory = in->memory_bytes();
    if (in->has_compute_request()) {
      if (auto e = non_finite("compute_request", in->compute_request())) return invalid(*e);
      c.request = in->compute_request();
    }
    if (in->has_compute_limit()) {
      if (auto e = non_finite("compute_limit", in->compute_limit())) return invalid(*e);
      c.limit = in->compute_limit();
    }
    if (in->set_devices()) c.devices.assign(in->devices().begin(), in->devices().end());
    if (in->has_enforcement()) {
      auto policy = policy_from(in->enforcement());
      if (!policy) return invalid(policy.error());
      c.enforcement = *policy;
    }
    TenantConfig before = t->config;
    auto u = d_.update_tenant(c);
    if (!u) return from_error(u.error());
    std::string diff = describe_tenant_change(before, (*u)->config);
    audit(ctx, "tenant '" + c.name + "' updated: " + (diff.empty() ? std::string("no change") : diff));
    fill_tenant(d_, *u, out);
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::DeleteTenant(Ctx* ctx, const pb::DeleteTenantRequest* in, pb::DeleteTenantResponse*) {
  return on_loop([&] {
    Tenant* t = d_.tenants().by_name(in->name());
    std::string was = t ? tenant_summary(t->config) : std::string();
    auto r = d_.delete_tenant(in->name());
    if (r) audit(ctx, "tenant '" + in->name() + "' deleted (was: " + was + ")");
    return r ? grpc::Status::OK : from_error(r.error());
  });
}

grpc::Status AdminService::ResetTenant(Ctx* ctx, const pb::ResetTenantRequest* in, pb::Tenant* out) {
  return on_loop([&] {
    Tenant* cur = d_.tenants().by_name(in->name());
    std::optional<TenantConfig> before;
    if (cur) before = cur->config;
    auto t = d_.reset_tenant(in->name());
    if (!t) return from_error(t.error());
    std::string diff = before ? describe_tenant_change(*before, (*t)->config) : "restored (was deleted)";
    audit(ctx, "tenant '" + in->name() + "' reset to the file: " + (diff.empty() ? std::string("no change") : diff));
    fill_tenant(d_, *t, out);
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::RotateToken(Ctx* ctx, const pb::RotateTokenRequest* in, pb::TenantWithToken* out) {
  return on_loop([&] {
    auto t = d_.rotate_token(in->name(), in->token());
    if (!t) return from_error(t.error());
    audit(ctx, "tenant '" + in->name() + "' token rotated");
    fill_tenant(d_, *t, out->mutable_tenant());
    out->set_token((*t)->config.token);
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::GetStatus(Ctx*, const pb::GetStatusRequest*, pb::NodeStatus* out) {
  return on_loop([&] {
    fill_status(d_, out);
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::ListProcesses(Ctx*, const pb::ListProcessesRequest* in, pb::ListProcessesResponse* out) {
  return on_loop([&] {
    if (!in->tenant().empty() && !d_.tenants().by_name(in->tenant()))
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no tenant named '" + in->tenant() + "'");
    fill_processes(d_, in->tenant(), out);
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::ListEvents(Ctx*, const pb::ListEventsRequest* in, pb::ListEventsResponse* out) {
  return on_loop([&] {
    // Newest first while selecting, so that `limit` keeps the most recent.
    std::vector<const EnforcementEvent*> picked;
    const auto& events = d_.enforcement().events();
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (in->limit() && picked.size() >= in->limit()) break;
      // Not `break`: the wall clock may have been set back between events.
      if (it->unix_ns < in->since_unix_ns()) continue;
      if (in->has_tenant() && it->tenant != in->tenant()) continue;
      picked.push_back(&*it);
    }
    for (auto it = picked.rbegin(); it != picked.rend(); ++it) fill_event(**it, out->add_events());
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::Watch(Ctx* ctx, const pb::WatchRequest* in, grpc::ServerWriter<pb::Snapshot>* w) {
  auto interval = std::chrono::milliseconds(in->interval_ms() ? std::max<uint32_t>(in->interval_ms(), 50) : 1000);
  while (!ctx->IsCancelled()) {
    pb::Snapshot s;
    grpc::Status st = on_loop([&] {
      fill_status(d_, s.mutable_status());
      for (Tenant* t : d_.tenants().all()) fill_tenant(d_, t, s.add_tenants());
      pb::ListProcessesResponse procs;
      fill_processes(d_, "", &procs);
      for (auto& p : procs.processes()) *s.add_processes() = p;
      return grpc::Status::OK;
    });
    if (!st.ok()) return st;
    if (!w->Write(s)) break;
    auto until = std::chrono::steady_clock::now() + interval;
    while (std::chrono::steady_clock::now() < until && !ctx->IsCancelled())
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return grpc::Status::OK;
}

}  // namespace vgpu::sched
