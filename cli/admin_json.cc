#include "admin_json.h"

namespace vgpu::cli {

namespace {

Json strings(const google::protobuf::RepeatedPtrField<std::string>& list) {
  Json out = Json::array();
  for (const auto& s : list) out.push_back(s);
  return out;
}

Json tenant_gpu_json(const api::TenantGpu& g) {
  return Json{{"index", g.gpu_index()},
              {"uuid", g.gpu_uuid()},
              {"allowed", g.allowed()},
              {"memory_used_bytes", g.memory_used_bytes()},
              {"memory_limit_bytes", g.memory_limit_bytes()},
              {"allocations_denied", g.allocations_denied()},
              {"share_target", g.share_target()},
              {"share_achieved", g.share_achieved()},
              {"share_effective", g.share_effective()},
              {"holds_lease", g.holds_lease()},
              {"waiting", g.waiting()},
              {"leases_granted", g.leases_granted()},
              {"leases_preempted", g.leases_preempted()},
              {"lease_wait_ns", g.lease_wait_ns()}};
}

Json gpu_status_json(const api::GpuStatus& g) {
  return Json{{"index", g.index()},
              {"uuid", g.uuid()},
              {"name", g.name()},
              {"memory_total_bytes", g.memory_total_bytes()},
              {"memory_used_bytes", g.memory_used_bytes()},
              {"memory_allocated_bytes", g.memory_allocated_bytes()},
              {"memory_quota_bytes", g.memory_quota_bytes()},
              {"busy_fraction", g.busy_fraction()},
              {"lease_holder", g.lease_holder()},
              {"waiting", strings(g.waiting())}};
}

}  // namespace

Json tenant_json(const api::Tenant& t) {
  const auto& s = t.spec();
  Json gpus = Json::array();
  for (const auto& g : t.gpus()) gpus.push_back(tenant_gpu_json(g));
  return Json{{"name", s.name()},
              {"priority", s.priority()},
              {"memory_bytes", s.memory_bytes()},
              {"compute_request", s.compute_request()},
              {"compute_limit", s.compute_limit()},
              {"devices", strings(s.devices())},
              {"source", t.source()},
              {"processes", t.processes()},
              {"gpus", std::move(gpus)},
              {"enforcement", s.enforcement()}};
}

Json tenant_with_token_json(const api::TenantWithToken& t) {
  return Json{{"tenant", tenant_json(t.tenant())}, {"token", t.token()}};
}

Json tenants_json(const google::protobuf::RepeatedPtrField<api::Tenant>& tenants) {
  Json out = Json::array();
  for (const auto& t : tenants) out.push_back(tenant_json(t));
  return out;
}

Json status_json(const api::NodeStatus& s) {
  Json gpus = Json::array();
  for (const auto& g : s.gpus()) gpus.push_back(gpu_status_json(g));
  return Json{{"version", s.version()},
              {"uptime_ns", s.uptime_ns()},
              {"tenants", s.tenants()},
              {"processes", s.processes()},
              {"gpus", std::move(gpus)}};
}

Json process_json(const api::Process& p) {
  Json gpus = Json::array();
  for (const auto& g : p.gpus())
    gpus.push_back(Json{{"index", g.gpu_index()},
                        {"memory_bytes", g.memory_bytes()},
                        {"lease", g.lease()},
                        {"physical_bytes", g.physical_bytes()}});
  return Json{{"pid", p.pid()}, {"tenant", p.tenant()}, {"gpus", std::move(gpus)}, {"managed", p.managed()}};
}

Json processes_json(const google::protobuf::RepeatedPtrField<api::Process>& processes) {
  Json out = Json::array();
  for (const auto& p : processes) out.push_back(process_json(p));
  return out;
}

Json event_json(const api::Event& e) {
  return Json{{"unix_ns", e.unix_ns()}, {"reason", e.reason()}, {"action", e.action()}, {"pid", e.pid()},
              {"tenant", e.tenant()},   {"gpu", e.gpu_index()}, {"detail", e.detail()}};
}

Json events_json(const google::protobuf::RepeatedPtrField<api::Event>& events) {
  Json out = Json::array();
  for (const auto& e : events) out.push_back(event_json(e));
  return out;
}

Json snapshot_json(const api::Snapshot& s) {
  return Json{{"status", status_json(s.status())},
              {"tenants", tenants_json(s.tenants())},
              {"processes", processes_json(s.processes())}};
}

}  // namespace vgpu::cli
