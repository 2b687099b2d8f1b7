#include "pod_resources.h"

#include <grpcpp/grpcpp.h>

#include <vector>

#include "allocation.h"

namespace vgpu::k8s {

std::map<std::string, PodRef> live_allocations(const ::v1::ListPodResourcesResponse& resp,
                                               const std::string& resource) {
  std::map<std::string, PodRef> out;
  for (const auto& pod : resp.pod_resources())
    for (const auto& c : pod.containers()) {
      std::vector<std::string> ids;
      for (const auto& d : c.devices())
        if (d.resource_name() == resource) ids.insert(ids.end(), d.device_ids().begin(), d.device_ids().end());
      if (!ids.empty()) out[allocation_id(ids)] = PodRef{pod.namespace_(), pod.name(), c.name()};
    }
  return out;
}

PodResourcesClient::PodResourcesClient(std::string socket, std::chrono::milliseconds timeout)
    : socket_(std::move(socket)), timeout_(timeout) {
  // A subchannel of its own: gRPC shares subchannels between channels to the
  // same address, and a short-lived client that found the kubelet down would
  // leave the long-lived one waiting out its reconnect backoff.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  stub_ = ::v1::PodResourcesLister::NewStub(
      grpc::CreateCustomChannel("unix://" + socket_, grpc::InsecureChannelCredentials(), args));
}

Result<std::map<std::string, PodRef>> PodResourcesClient::list(const std::string& resource) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
  ::v1::ListPodResourcesResponse resp;
  grpc::Status s = stub_->List(&ctx, ::v1::ListPodResourcesRequest(), &resp);
  if (!s.ok()) return make_error("PodResources at " + socket_ + ": " + s.error_message());
  return live_allocations(resp, resource);
}

}  // namespace vgpu::k8s
