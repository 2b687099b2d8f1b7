// AdminService: the handlers of the admin API (admin.proto). Each handler
// runs its work on vgpud's event loop and converts errors to gRPC statuses:
// unknown tenant -> NOT_FOUND, invalid values -> INVALID_ARGUMENT,
// vgpud shutting down -> UNAVAILABLE.
#pragma once

#include <functional>

#include "admin.grpc.pb.h"

namespace vgpu::sched {

namespace pb = vgpu::admin::v1;
class Daemon;

class AdminService final : public vgpu::admin::v1::Admin::Service {
 public:
  // `who` names the peer of a request for the audit log ("uid 0 pid 42
  // (vgpuctl)"), from the credentials the admin server read at accept().
  using PeerLookup = std::function<std::string(const std::string& grpc_peer)>;
  explicit AdminService(Daemon& d, PeerLookup who = {}) : d_(d), who_(std::move(who)) {}
  using Ctx = grpc::ServerContext;
  grpc::Status ListTenants(Ctx*, const pb::ListTenantsRequest*, pb::ListTenantsResponse*) override;
  grpc::Status GetTenant(Ctx*, const pb::GetTenantRequest*, pb::Tenant*) override;
  grpc::Status CreateTenant(Ctx*, const pb::CreateTenantRequest*, pb::TenantWithToken*) override;
  grpc::Status UpdateTenant(Ctx*, const pb::UpdateTenantRequest*, pb::Tenant*) override;
  grpc::Status DeleteTenant(Ctx*, const pb::DeleteTenantRequest*, pb::DeleteTenantResponse*) override;
  grpc::Status ResetTenant(grpc::ServerContext*, const pb::ResetTenantRequest* in, pb::Tenant* out) override;
  grpc::Status RotateToken(Ctx*, const pb::RotateTokenRequest*, pb::TenantWithToken*) override;
  grpc::Status GetStatus(Ctx*, const pb::GetStatusRequest*, pb::NodeStatus*) override;
  grpc::Status ListProcesses(Ctx*, const pb::ListProcessesRequest*, pb::ListProcessesResponse*) override;
  grpc::Status ListEvents(Ctx*, const pb::ListEventsRequest*, pb::ListEventsResponse*) override;
  grpc::Status Watch(Ctx*, const pb::WatchRequest*, grpc::ServerWriter<pb::Snapshot>*) override;
  // Allocation tenants (allocation_record.h); an allocation of another
  // tenant's name -> ALREADY_EXISTS, a plain tenant's name in Delete -> NOT_FOUND.
  grpc::Status CreateAllocation(Ctx*, const pb::CreateAllocationRequest*, pb::Allocation*) override;
  grpc::Status ListAllocations(Ctx*, const pb::ListAllocationsRequest*, pb::ListAllocationsResponse*) override;
  grpc::Status DeleteAllocation(Ctx*, const pb::DeleteAllocationRequest*, pb::DeleteAllocationResponse*) override;
  grpc::Status SetAllocationLabels(Ctx*, const pb::SetAllocationLabelsRequest*, pb::Allocation*) override;

 private:
  // Runs `fn` on the loop; UNAVAILABLE if vgpud is stopping.
  grpc::Status on_loop(const std::function<grpc::Status()>& fn);
  // One audit line per change made through the API: who, what, before -> after.
  void audit(grpc::ServerContext* ctx, const std::string& what) const;
  Daemon& d_;
  PeerLookup who_;
};

}  // namespace vgpu::sched
