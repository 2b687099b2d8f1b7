#include "admin_json.h"

#include "proto_json.h"

namespace vgpu::cli {

// Each message goes through protobuf's JSON printer (proto_json.h); what is
// left here is where the documented shape differs from the .proto: a few
// names (gpu_index is "index" or "gpu"), the tenant's spec flattened into
// the tenant, and the documented order of keys.

namespace {

Json tenant_gpu_json(const Json& g) {
  return reshape(g, {{"gpu_index", "index"}, {"gpu_uuid", "uuid"}},
                 {"index", "uuid", "allowed", "memory_used_bytes", "memory_limit_bytes", "allocations_denied",
                  "share_target", "share_achieved", "share_effective", "holds_lease", "waiting", "leases_granted",
                  "leases_preempted", "lease_wait_ns"});
}

// The lease holder is not waiting for the lease: it is left out of `waiting`
// (vgpud may list a tenant that holds the lease and has more launches queued).
Json gpu_status_json(const Json& g) {
  Json out = g;
  Json waiting = Json::array();
  for (const auto& w : g["waiting"])
    if (w != g["lease_holder"]) waiting.push_back(w);
  out["waiting"] = std::move(waiting);
  return out;
}

Json tenant_from(const Json& t) {
  Json flat = t["spec"];
  for (const auto& [key, value] : t.items())
    if (key != "spec") flat[key] = value;
  Json gpus = Json::array();
  for (const auto& g : flat["gpus"]) gpus.push_back(tenant_gpu_json(g));
  flat["gpus"] = std::move(gpus);
  return reshape(flat, {},
                 {"name", "priority", "memory_bytes", "compute_request", "compute_limit", "devices", "source",
                  "processes", "gpus", "enforcement"});
}

Json status_from(const Json& s) {
  Json out = reshape(s, {}, {"version", "uptime_ns", "tenants", "processes", "gpus"});
  Json gpus = Json::array();
  for (const auto& g : out["gpus"]) gpus.push_back(gpu_status_json(g));
  out["gpus"] = std::move(gpus);
  return out;
}

Json process_from(const Json& p) {
  Json out = p;
  Json gpus = Json::array();
  for (const auto& g : p["gpus"]) gpus.push_back(reshape(g, {{"gpu_index", "index"}}, {}));
  out["gpus"] = std::move(gpus);
  return out;
}

Json event_from(const Json& e) { return reshape(e, {{"gpu_index", "gpu"}}, {}); }

template <class Message, class Convert>
Json array_of(const google::protobuf::RepeatedPtrField<Message>& list, Convert convert) {
  Json out = Json::array();
  for (const auto& m : list) out.push_back(convert(m));
  return out;
}

}  // namespace

Json tenant_json(const api::Tenant& t) {
  Json j = tenant_from(proto_json(t));
  // Only allocation tenants serve a Kubernetes container: the key is absent
  // (not empty strings) for the others.
  if (!t.has_kubernetes()) j.erase("kubernetes");
  return j;
}

Json tenant_with_token_json(const api::TenantWithToken& t) {
  return Json{{"tenant", tenant_json(t.tenant())}, {"token", t.token()}};
}

Json tenants_json(const google::protobuf::RepeatedPtrField<api::Tenant>& tenants) {
  return array_of(tenants, tenant_json);
}

Json status_json(const api::NodeStatus& s) { return status_from(proto_json(s)); }

Json process_json(const api::Process& p) { return process_from(proto_json(p)); }

Json processes_json(const google::protobuf::RepeatedPtrField<api::Process>& processes) {
  return array_of(processes, process_json);
}

Json event_json(const api::Event& e) { return event_from(proto_json(e)); }

Json events_json(const google::protobuf::RepeatedPtrField<api::Event>& events) {
  return array_of(events, event_json);
}

Json snapshot_json(const api::Snapshot& s) {
  return Json{{"status", status_json(s.status())},
              {"tenants", tenants_json(s.tenants())},
              {"processes", processes_json(s.processes())}};
}

}  // namespace vgpu::cli
