// VgpudClient: the device plugin's connection to vgpud's admin API (the same
// API vgpuctl uses; vgpud stays the only authority on tenants). Every call
// has a deadline; errors are one line that says whether vgpud is unreachable
// or what it refused. Thread-safe (gRPC stubs are).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "admin.grpc.pb.h"
#include "allocation.h"
#include "vgpu/result.h"

namespace vgpu::k8s {

namespace api = ::vgpu::admin::v1;

class VgpudClient {
 public:
  explicit VgpudClient(std::string admin_socket, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The node's GPUs with vgpud's health view.
  Result<std::vector<GpuView>> gpus();
  Result<api::Allocation> create_allocation(const api::AllocationSpec& spec);
  Result<std::vector<api::Allocation>> list_allocations();
  Result<api::Allocation> set_labels(const std::string& name, const api::AllocationLabels& labels);
  Result<api::Tenant> get_tenant(const std::string& name, bool* not_found = nullptr);
  // Sets the compute request, limit and priority of a tenant (allocation
  // tenants allow that much). *refused: vgpud answered and said no (e.g.
  // the requests on a GPU would pass 100 %), as opposed to unreachable.
  Result<api::Tenant> update_compute(const std::string& name, double request, double limit,
                                     const std::string& priority, bool* refused = nullptr);
  // Not found counts as done.
  Result<bool> delete_allocation(const std::string& name);
  const std::string& socket() const { return socket_; }

 private:
  std::string describe(const grpc::Status& s) const;
  std::string socket_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<api::Admin::Stub> stub_;
};

}  // namespace vgpu::k8s
