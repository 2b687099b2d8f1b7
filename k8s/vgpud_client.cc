#include "vgpud_client.h"

#include <grpcpp/grpcpp.h>

namespace vgpu::k8s {

VgpudClient::VgpudClient(std::string admin_socket, std::chrono::milliseconds timeout)
    : socket_(std::move(admin_socket)), timeout_(timeout) {
  // vgpud restarts: reconnect within seconds, not after gRPC's default
  // backoff of up to two minutes (the devices stay Unhealthy meanwhile).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  stub_ = api::Admin::NewStub(
      grpc::CreateCustomChannel("unix:" + socket_, grpc::InsecureChannelCredentials(), args));
}

std::string VgpudClient::describe(const grpc::Status& s) const {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return "vgpud is unreachable at " + socket_ + ": " + s.error_message();
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "vgpud at " + socket_ + " did not answer in time";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "vgpud at " + socket_ + " is too old for the device plugin (" + s.error_message() + ")";
    default:
      return "vgpud refused: " + s.error_message();
  }
}

namespace {
template <class Fn>
grpc::Status with_deadline(std::chrono::milliseconds t, Fn fn) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + t);
  return fn(&ctx);
}
}  // namespace

Result<std::vector<GpuView>> VgpudClient::gpus() {
  api::NodeStatus st;
  auto s = with_deadline(timeout_, [&](grpc::ClientContext* c) { return stub_->GetStatus(c, {}, &st); });
  if (!s.ok()) return make_error(describe(s));
  std::vector<GpuView> out;
  for (const auto& g : st.gpus()) out.push_back({g.index(), g.uuid(), g.memory_total_bytes(), g.healthy()});
  return out;
}

Result<api::Allocation> VgpudClient::create_allocation(const api::AllocationSpec& spec) {
  api::CreateAllocationRequest req;
  *req.mutable_spec() = spec;
  api::Allocation out;
  auto s = with_deadline(timeout_, [&](grpc::ClientContext* c) { return stub_->CreateAllocation(c, req, &out); });
  if (!s.ok()) return make_error(describe(s));
  return out;
}

Result<std::vector<api::Allocation>> VgpudClient::list_allocations() {
  api::ListAllocationsResponse out;
  auto s = with_deadline(timeout_, [&](grpc::ClientContext* c) { return stub_->ListAllocations(c, {}, &out); });
  if (!s.ok()) return make_error(describe(s));
  return std::vector<api::Allocation>(out.allocations().begin(), out.allocations().end());
}

Result<api::Allocation> VgpudClient::set_labels(const std::string& name, const api::AllocationLabels& labels) {
  api::SetAllocationLabelsRequest req;
  req.set_name(name);
  *req.mutable_labels() = labels;
  api::Allocation out;
  auto s = with_deadline(timeout_, [&](grpc::ClientContext* c) { return stub_->SetAllocationLabels(c, req, &out); });
  if (!s.ok()) return make_error(describe(s));
  return out;
}

Result<api::Tenant> VgpudClient::get_tenant(const std::string& name, bool* not_found) {
  api::GetTenantRequest req;
  req.set_name(name);
  api::Tenant out;
  auto s = with_deadline(timeout_, [&](grpc::ClientContext* c) { return stub_->GetTenant(c, req, &out); });
  if (not_found) *not_found = s.error_code() == grpc::StatusCode::NOT_FOUND;
  if (!s.ok()) return make_error(describe(s));
  return out;
}

Result<api::Tenant> VgpudClient::update_compute(const std::string& name, double request, double limit,
                                                const std::string& priority, bool* refused) {
  api::UpdateTenantRequest req;
  req.set_name(name);
  req.set_compute_request(request);
  req.set_compute_limit(limit);
  req.set_priority(priority);
  api::Tenant out;
  auto s = with_deadline(timeout_, [&](grpc::ClientContext* c) { return stub_->UpdateTenant(c, req, &out); });
  if (refused)
    *refused = s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
               s.error_code() == grpc::StatusCode::FAILED_PRECONDITION;
  if (!s.ok()) return make_error(describe(s));
  return out;
}

Result<bool> VgpudClient::delete_allocation(const std::string& name) {
  api::DeleteAllocationRequest req;
  req.set_name(name);
  api::DeleteAllocationResponse out;
  auto s = with_deadline(timeout_, [&](grpc::ClientContext* c) { return stub_->DeleteAllocation(c, req, &out); });
  if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND) return make_error(describe(s));
  return true;
}

}  // namespace vgpu::k8s
