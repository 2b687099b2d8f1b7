// Registrar: keeps the plugin registered with the kubelet. A kubelet restart
// deletes every socket in device-plugins/ (ours included) and re-creates
// kubelet.sock; the Registrar notices either (inotify on the directory, and a
// check at least every second for what inotify cannot see, e.g. the whole
// directory replaced), binds a fresh plugin socket if ours is gone, and
// registers again (version v1beta1, our endpoint, <domain>/gpu-memory).
// A failed registration is retried every second.
// Thread-safe: run() on its own thread, stop() and registrations() from any.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <string>

#include "options.h"
#include "plugin_server.h"

namespace vgpu::k8s {

class Registrar {
 public:
  Registrar(const PluginOptions& opts, PluginServer& server) : opts_(opts), server_(server) {}
  void run();
  void stop() { stop_ = true; }
  // Successful registrations so far.
  uint64_t registrations() const { return registrations_.load(); }

 private:
  Result<bool> register_once();
  // kubelet.sock's identity (inode and change time); 0 if it is missing.
  struct FileId {
    ino_t ino = 0;
    int64_t ctime_ns = 0;
    bool operator==(const FileId&) const = default;
  };
  FileId kubelet_socket_id() const;

  PluginOptions opts_;
  PluginServer& server_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> registrations_{0};
};

}  // namespace vgpu::k8s
