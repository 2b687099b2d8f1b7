// PluginServer: the DevicePlugin gRPC service on the plugin's socket in the
// kubelet's device-plugins/ directory. The kubelet deletes that directory's
// sockets when it restarts; start() can be called again to bind a fresh
// socket (Registrar does, registration.h). ListAndWatch streams end when the
// server is replaced or stopped, or the kubelet goes away.
// Thread-safe: start/stop from one thread (the Registrar's or main's), RPCs
// on gRPC's threads.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "allocator.h"
#include "device_state.h"
#include "deviceplugin.grpc.pb.h"
#include "options.h"

namespace vgpu::k8s {

// Called by PreStartContainer with the container's device IDs.
using PreStartHook = std::function<void(const std::vector<std::string>&)>;

class DevicePluginService final : public v1beta1::DevicePlugin::Service {
 public:
  DevicePluginService(const PluginOptions& opts, DeviceState& state, Allocator& allocator, PreStartHook pre_start)
      : opts_(opts), state_(state), allocator_(allocator), pre_start_(std::move(pre_start)) {}
  using Ctx = grpc::ServerContext;
  grpc::Status GetDevicePluginOptions(Ctx*, const v1beta1::Empty*, v1beta1::DevicePluginOptions*) override;
  grpc::Status ListAndWatch(Ctx*, const v1beta1::Empty*, grpc::ServerWriter<v1beta1::ListAndWatchResponse>*) override;
  grpc::Status GetPreferredAllocation(Ctx*, const v1beta1::PreferredAllocationRequest*,
                                      v1beta1::PreferredAllocationResponse*) override;
  grpc::Status Allocate(Ctx*, const v1beta1::AllocateRequest*, v1beta1::AllocateResponse*) override;
  grpc::Status PreStartContainer(Ctx*, const v1beta1::PreStartContainerRequest*,
                                 v1beta1::PreStartContainerResponse*) override;
  // Ends the streams of the server generation before this call.
  void next_generation() { ++generation_; }

 private:
  const PluginOptions& opts_;
  DeviceState& state_;
  Allocator& allocator_;
  PreStartHook pre_start_;
  std::atomic<uint64_t> generation_{0};
};

// The options every registration announces.
v1beta1::DevicePluginOptions plugin_options(const PluginOptions& opts);

class PluginServer {
 public:
  PluginServer(const PluginOptions& opts, DeviceState& state, Allocator& allocator, PreStartHook pre_start);
  ~PluginServer();
  // Binds opts.plugin_socket() (replacing a stale file and a running server).
  Result<bool> start();
  // Ends the server and its streams; removes the socket file if it is ours.
  void stop();
  // True while the socket file we bound is still there (same inode).
  bool socket_present() const;

 private:
  PluginOptions opts_;
  DevicePluginService service_;
  std::unique_ptr<grpc::Server> server_;
  ino_t inode_ = 0;
};

}  // namespace vgpu::k8s
