// Allocator: what Allocate does for one container, all-or-nothing:
//   device IDs -> plan (allocation.h; bad IDs refused before anything else)
//   -> vgpud: the allocation tenant with its quota per GPU and its own socket
//   -> CDI spec of the allocation (cdi.h), written atomically
//   -> the ContainerAllocateResponse: CDI devices (<domain>/gpu=<alloc>, and
//      <nvidia kind>=<uuid> per GPU), the same env and mounts for runtimes
//      without CDI, NVIDIA_VISIBLE_DEVICES.
// A failure at any step undoes what this request created (a tenant that
// existed before, from a replay, is left alone). restore() re-writes the CDI
// spec of every allocation vgpud still has, at start: the kubelet replays its
// checkpointed responses without calling Allocate again.
// Thread-safe (its collaborators are; gRPC calls it from several threads).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "cdi.h"
#include "device_state.h"
#include "deviceplugin.pb.h"
#include "options.h"
#include "vgpud_client.h"

namespace vgpu::k8s {

class Allocator {
 public:
  Allocator(const PluginOptions& opts, VgpudClient& vgpud, DeviceState& state);
  // INVALID_ARGUMENT: bad device IDs; UNAVAILABLE: vgpud unreachable;
  // FAILED_PRECONDITION: vgpud refused; INTERNAL: the CDI spec cannot be written.
  grpc::Status allocate(const v1beta1::AllocateRequest& req, v1beta1::AllocateResponse* out);
  // Re-writes the CDI spec of every allocation of ours vgpud has; the count.
  Result<size_t> restore();
  const HostLayout& layout() const { return layout_; }

 private:
  struct Created {
    std::string name;
    bool existed = false;
  };
  grpc::Status allocate_one(const std::vector<std::string>& ids, v1beta1::ContainerAllocateResponse* out,
                            std::vector<Created>* created);
  void fill_response(const api::Allocation& a, v1beta1::ContainerAllocateResponse* out) const;
  void undo(const std::vector<Created>& created);

  PluginOptions opts_;
  HostLayout layout_;
  VgpudClient& vgpud_;
  DeviceState& state_;
};

}  // namespace vgpu::k8s
