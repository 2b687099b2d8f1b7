#include "registration.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deviceplugin.grpc.pb.h"
#include "log.h"

namespace vgpu::k8s {

using sched::log_info;
using sched::log_warn;

Registrar::FileId Registrar::kubelet_socket_id() const {
  struct stat st;
  if (stat(opts_.kubelet_socket().c_str(), &st) != 0) return {};
  return {st.st_ino, static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec};
}

Result<bool> Registrar::register_once() {
  auto channel = grpc::CreateChannel("unix://" + opts_.kubelet_socket(), grpc::InsecureChannelCredentials());
  auto stub = v1beta1::Registration::NewStub(channel);
  v1beta1::RegisterRequest req;
  req.set_version("v1beta1");
  req.set_endpoint(opts_.endpoint());
  req.set_resource_name(opts_.resource_name());
  *req.mutable_options() = plugin_options(opts_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1beta1::Empty out;
  grpc::Status s = stub->Register(&ctx, req, &out);
  if (!s.ok()) return make_error("kubelet at " + opts_.kubelet_socket() + " refused the registration: " + s.error_message());
  return true;
}

void Registrar::run() {
  int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  FileId registered_with;
  bool warned = false;
  while (!stop_) {
    // Watches are re-added every round: a removed directory drops its watch.
    if (in >= 0) {
      inotify_add_watch(in, opts_.plugins_dir().c_str(), IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM);
      inotify_add_watch(in, opts_.kubelet_root.c_str(), IN_CREATE | IN_MOVED_TO);
    }
    bool fresh_socket = false;
    if (!server_.socket_present()) {
      if (auto ok = server_.start(); !ok) {
        if (!warned) log_warn("%s (retrying every second)", ok.error().c_str());
        warned = true;
      } else {
        fresh_socket = true;
        warned = false;
      }
    }
    FileId now = kubelet_socket_id();
    if (server_.socket_present() && now.ino != 0 && (fresh_socket || !(now == registered_with))) {
      if (auto ok = register_once(); ok) {
        registered_with = now;
        registrations_++;
        log_info("registered %s with the kubelet (%s)", opts_.resource_name().c_str(), opts_.kubelet_socket().c_str());
      } else {
        log_warn("%s (retrying every second)", ok.error().c_str());
      }
    }
    pollfd p{in, POLLIN, 0};
    if (in >= 0 && poll(&p, 1, 1000) > 0) {
      char buf[4096];
      while (read(in, buf, sizeof buf) > 0) {
      }
      // Let a burst of changes (a kubelet restart) settle before acting.
      usleep(50'000);
    } else if (in < 0) {
      usleep(1'000'000);
    }
  }
  if (in >= 0) close(in);
}

}  // namespace vgpu::k8s
