#include "allocator.h"

#include "log.h"

namespace vgpu::k8s {

using sched::log_info;
using sched::log_warn;

namespace {
// vgpud's message starts with what went wrong talking to it.
grpc::Status vgpud_failure(const std::string& m) {
  bool down = m.rfind("vgpud is unreachable", 0) == 0 || m.find("did not answer") != std::string::npos;
  return {down ? grpc::StatusCode::UNAVAILABLE : grpc::StatusCode::FAILED_PRECONDITION, m};
}
}  // namespace

Allocator::Allocator(const PluginOptions& opts, VgpudClient& vgpud, DeviceState& state)
    : opts_(opts), layout_{opts.host_dir}, vgpud_(vgpud), state_(state) {}

grpc::Status Allocator::allocate(const v1beta1::AllocateRequest& req, v1beta1::AllocateResponse* out) {
  std::vector<Created> created;
  for (const auto& c : req.container_requests()) {
    std::vector<std::string> ids(c.devices_ids().begin(), c.devices_ids().end());
    grpc::Status s = allocate_one(ids, out->add_container_responses(), &created);
    if (!s.ok()) {
      undo(created);
      out->Clear();
      log_warn("Allocate refused: %s", s.error_message().c_str());
      return s;
    }
  }
  return grpc::Status::OK;
}

grpc::Status Allocator::allocate_one(const std::vector<std::string>& ids, v1beta1::ContainerAllocateResponse* out,
                                     std::vector<Created>* created) {
  auto plan = plan_allocation(ids, state_.gpus(), opts_.memory_unit);
  if (!plan) return {grpc::StatusCode::INVALID_ARGUMENT, plan.error()};
  api::AllocationSpec spec;
  spec.set_name(plan->id);
  for (const auto& [uuid, bytes] : plan->quota_bytes) {
    auto* q = spec.add_quotas();
    q->set_gpu_uuid(uuid);
    q->set_memory_bytes(bytes);
  }
  spec.set_socket_root(layout_.socket_root());
  auto a = vgpud_.create_allocation(spec);
  if (!a) return vgpud_failure(a.error());
  created->push_back({plan->id, a->existed()});
  auto edits = allocation_edits(layout_, a->socket_dir());
  if (auto ok = write_cdi_spec(opts_.cdi_dir, opts_.cdi_kind(), plan->id, edits); !ok)
    return {grpc::StatusCode::INTERNAL, ok.error()};
  fill_response(*a, out);
  log_info("allocation %s: %zu devices, %s (%s)", plan->id.c_str(), ids.size(), a->socket_path().c_str(),
           a->existed() ? "existed: a replay" : "new");
  return grpc::Status::OK;
}

void Allocator::fill_response(const api::Allocation& a, v1beta1::ContainerAllocateResponse* out) const {
  const std::string& name = a.spec().name();
  out->add_cdi_devices()->set_name(cdi_device_name(opts_.cdi_kind(), name));
  std::string uuids;
  for (const auto& q : a.spec().quotas()) {
    if (!opts_.nvidia_cdi_kind.empty()) out->add_cdi_devices()->set_name(cdi_device_name(opts_.nvidia_cdi_kind, q.gpu_uuid()));
    uuids += (uuids.empty() ? "" : ",") + q.gpu_uuid();
  }
  ContainerEdits e = allocation_edits(layout_, a.socket_dir());
  for (const auto& [k, v] : e.env) (*out->mutable_envs())[k] = v;
  if (opts_.nvidia_env) (*out->mutable_envs())["NVIDIA_VISIBLE_DEVICES"] = uuids;
  for (const EditMount& m : e.mounts) {
    auto* mount = out->add_mounts();
    mount->set_host_path(m.host_path);
    mount->set_container_path(m.container_path);
    mount->set_read_only(m.read_only);
  }
}

void Allocator::undo(const std::vector<Created>& created) {
  for (const Created& c : created) {
    if (c.existed) continue;
    remove_cdi_spec(opts_.cdi_dir, opts_.cdi_kind(), c.name);
    if (auto r = vgpud_.delete_allocation(c.name); !r)
      log_warn("allocation %s: cannot undo: %s", c.name.c_str(), r.error().c_str());
  }
}

Result<size_t> Allocator::restore() {
  auto all = vgpud_.list_allocations();
  if (!all) return Error{all.error()};
  size_t n = 0;
  for (const api::Allocation& a : *all) {
    if (a.spec().name().rfind(kAllocationPrefix, 0) != 0) continue;  // not the device plugin's
    if (!a.listening()) log_warn("allocation %s: vgpud has no socket for it", a.spec().name().c_str());
    auto edits = allocation_edits(layout_, a.socket_dir());
    if (auto ok = write_cdi_spec(opts_.cdi_dir, opts_.cdi_kind(), a.spec().name(), edits); !ok)
      return Error{ok.error()};
    ++n;
  }
  return n;
}

}  // namespace vgpu::k8s
