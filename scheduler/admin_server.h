// AdminServer: vgpud's admin API (common/proto/admin.proto) over gRPC on its
// own Unix socket. vgpud accepts each connection itself and checks the peer
// with SO_PEERCRED: root, or a member of `admin_group`, may talk; anyone else
// is disconnected at once, whatever the socket file's mode. Accepted
// connections are handed to a gRPC server that has no listening port of its
// own. Requests are served on gRPC's threads but every read and change of
// vgpud's state runs on the event loop (EventLoop::call).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "unix_listener.h"
#include "vgpu/result.h"

namespace grpc {
class Server;
}

namespace vgpu::sched {

class Daemon;

class AdminServer {
 public:
  explicit AdminServer(Daemon& daemon);
  ~AdminServer();
  // Listens on `path` (mode 0660, group `group` if given).
  Result<bool> start(const std::string& path, const std::string& group);
  void shutdown();

  // True if a peer with these credentials may use the admin API.
  static bool allowed(uid_t uid, gid_t gid, pid_t pid, gid_t admin_gid, bool have_group);

 private:
  void accept_clients();

  Daemon& daemon_;
  std::unique_ptr<class AdminService> service_;
  std::unique_ptr<grpc::Server> server_;
  int listen_fd_ = -1;
  std::string path_;
  SocketIdentity path_id_;  // the socket file this vgpud bound
  // Credentials of each accepted connection by descriptor, for the audit log.
  std::string describe_peer(const std::string& grpc_peer) const;
  mutable std::mutex peers_mu_;
  std::map<int, ucred> peers_;
  gid_t admin_gid_ = 0;
  bool have_group_ = false;
};

}  // namespace vgpu::sched
