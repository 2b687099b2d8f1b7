// The kubelet's PodResources API (v1, <kubelet-root>/pod-resources/kubelet.sock)
// as the plugin reads it: which allocations are still in use. A container's
// devices of our resource are one allocation (allocation_id of its device
// IDs, allocation.h), so the live allocations are computed, not looked up.
// Thread-safe (gRPC stubs are).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "podresources.grpc.pb.h"
#include "vgpu/result.h"

namespace vgpu::k8s {

// Who holds an allocation, from PodResources.
struct PodRef {
  std::string ns, pod, container;
};

// allocation id -> the container holding it, for the containers of `resp`
// with devices of `resource`.
std::map<std::string, PodRef> live_allocations(const ::v1::ListPodResourcesResponse& resp,
                                               const std::string& resource);

class PodResourcesClient {
 public:
  explicit PodResourcesClient(std::string socket, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The live allocations of `resource` now; an error if the kubelet does not answer.
  Result<std::map<std::string, PodRef>> list(const std::string& resource);
  const std::string& socket() const { return socket_; }

 private:
  std::string socket_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<::v1::PodResourcesLister::Stub> stub_;
};

}  // namespace vgpu::k8s
