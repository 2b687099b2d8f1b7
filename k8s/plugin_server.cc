#include "plugin_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

namespace vgpu::k8s {

using sched::log_info;

v1beta1::DevicePluginOptions plugin_options(const PluginOptions& opts) {
  v1beta1::DevicePluginOptions o;
  // PreStartContainer labels the allocation before its container starts
  // (and will apply the pod's annotations).
  o.set_pre_start_required(opts.pre_start);
  o.set_get_preferred_allocation_available(true);
  return o;
}

grpc::Status DevicePluginService::GetDevicePluginOptions(Ctx*, const v1beta1::Empty*,
                                                          v1beta1::DevicePluginOptions* out) {
  *out = plugin_options(opts_);
  return grpc::Status::OK;
}

grpc::Status DevicePluginService::ListAndWatch(Ctx* ctx, const v1beta1::Empty*,
                                               grpc::ServerWriter<v1beta1::ListAndWatchResponse>* w) {
  const uint64_t generation = generation_.load();
  uint64_t sent = UINT64_MAX;
  while (!ctx->IsCancelled() && !state_.stopping() && generation_.load() == generation) {
    uint64_t version = 0;
    auto devices = state_.devices(&version);
    if (version != sent) {
      v1beta1::ListAndWatchResponse r;
      for (const AdvertisedDevice& d : devices) {
        auto* dev = r.add_devices();
        dev->set_id(d.id);
        dev->set_health(d.healthy ? "Healthy" : "Unhealthy");
      }
      if (!w->Write(r)) break;
      sent = version;
    }
    // Bounded, so that cancellation and a new server generation are seen.
    state_.wait_change(sent, std::chrono::milliseconds(200));
  }
  return grpc::Status::OK;
}

grpc::Status DevicePluginService::GetPreferredAllocation(Ctx*, const v1beta1::PreferredAllocationRequest* in,
                                                          v1beta1::PreferredAllocationResponse* out) {
  for (const auto& c : in->container_requests()) {
    if (c.allocation_size() < 0) return {grpc::StatusCode::INVALID_ARGUMENT, "allocation_size is negative"};
    std::vector<std::string> avail(c.available_deviceids().begin(), c.available_deviceids().end());
    std::vector<std::string> must(c.must_include_deviceids().begin(), c.must_include_deviceids().end());
    auto* r = out->add_container_responses();
    for (auto& id : preferred_allocation(avail, must, static_cast<size_t>(c.allocation_size()))) r->add_deviceids(id);
  }
  return grpc::Status::OK;
}

grpc::Status DevicePluginService::Allocate(Ctx*, const v1beta1::AllocateRequest* in, v1beta1::AllocateResponse* out) {
  return allocator_.allocate(*in, out);
}

grpc::Status DevicePluginService::PreStartContainer(Ctx*, const v1beta1::PreStartContainerRequest* in,
                                                     v1beta1::PreStartContainerResponse*) {
  // Never fails the container: labels are for people, and the reconciler
  // sets them later if this attempt cannot.
  if (pre_start_) pre_start_(std::vector<std::string>(in->devices_ids().begin(), in->devices_ids().end()));
  return grpc::Status::OK;
}

PluginServer::PluginServer(const PluginOptions& opts, DeviceState& state, Allocator& allocator,
                           PreStartHook pre_start)
    : opts_(opts), service_(opts_, state, allocator, std::move(pre_start)) {}

PluginServer::~PluginServer() { stop(); }

Result<bool> PluginServer::start() {
  stop();
  std::string path = opts_.plugin_socket();
  unlink(path.c_str());
  grpc::ServerBuilder b;
  b.AddListeningPort("unix://" + path, grpc::InsecureServerCredentials());
  b.RegisterService(&service_);
  server_ = b.BuildAndStart();
  struct stat st;
  if (!server_ || stat(path.c_str(), &st) != 0) {
    server_.reset();
    return make_error("cannot serve the device plugin on " + path);
  }
  inode_ = st.st_ino;
  log_info("serving %s on %s", opts_.resource_name().c_str(), path.c_str());
  return true;
}

void PluginServer::stop() {
  if (!server_) return;
  service_.next_generation();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
  // The kubelet takes a missing socket for a plugin gone; a socket of ours
  // that a restarted kubelet already deleted (and maybe re-created for
  // someone else: a different inode) is left alone.
  struct stat st;
  if (stat(opts_.plugin_socket().c_str(), &st) == 0 && st.st_ino == inode_) unlink(opts_.plugin_socket().c_str());
}

bool PluginServer::socket_present() const {
  struct stat st;
  return server_ && stat(opts_.plugin_socket().c_str(), &st) == 0 && st.st_ino == inode_;
}

}  // namespace vgpu::k8s
